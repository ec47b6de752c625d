/**
 * The GPU node's HTTP layer: the internal API of gpu-node/contract/ over the two model runtimes,
 * on @hono/zod-openapi (routes in routes/, one file per operation with its streaming twin;
 * validation, 404/405/415 from the framework; the document at /v1/openapi.json).
 *
 * createGpuNodeApp(deps) builds the app and nothing else: it never loads models (main.ts does, in
 * the background) and never reads the environment. Tests drive it with app.request().
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import type { Logger } from "pino";
import { ServiceError } from "./contract/errors.ts";
import { GPU_ROUTES, type GpuNodeHealth, REQUEST_ID_HEADER } from "./contract/index.ts";
import { Lifecycle } from "./lifecycle/lifecycle.ts";
import type { ModelRegistry } from "./lifecycle/registry.ts";
import type { GpuNodeMetrics } from "./metrics.ts";
import type { AppSettings, GpuNodeEnv, RegisterRoutes, RouteDeps } from "./routes/context.ts";
import { round } from "./routes/context.ts";
import {
  methodNotAllowed as methodNotAllowedResponse,
  notFound,
  onError,
  validationHook,
} from "./routes/errors.ts";
import { registerHealth } from "./routes/health.ts";
import { registerHermesCritique } from "./routes/hermes-critique.ts";
import { registerHermesGenerate } from "./routes/hermes-generate.ts";
import { registerHermesJson, registerPhi3Json } from "./routes/json-generate.ts";
import { registerPhi3Generate } from "./routes/phi3-generate.ts";

export type { AppSettings } from "./routes/context.ts";

/** Largest request body, bytes. Prompts are bounded by the context window long before this. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** Where the node's own OpenAPI document is served (behind the token like every route). */
export const OPENAPI_PATH = "/v1/openapi.json";

/** Every operation, in the order the document lists them. Add a route file's register here. */
export const ROUTES: readonly RegisterRoutes[] = [
  registerHealth,
  registerHermesGenerate,
  registerHermesCritique,
  registerPhi3Generate,
  registerHermesJson,
  registerPhi3Json,
];

export interface GpuNodeDeps {
  settings: AppSettings;
  logger: Logger;
  registry: ModelRegistry;
  /** Shutdown state; main.ts drives it. A fresh one (never shutting down) by default. */
  lifecycle?: Lifecycle;
  /** Reported by /v1/health. */
  version?: string;
  /** Milliseconds, monotonic. */
  now?: () => number;
  /** Resident set size, bytes. */
  rssBytes?: () => number;
  /** Extra operations (e.g. other route files' register functions), after ROUTES. */
  routes?: readonly RegisterRoutes[];
  /** The start-up VRAM plan (vram-plan.ts), reported by /v1/health as `vram_plan`. */
  vramPlan?: GpuNodeHealth["vram_plan"];
  /** Prometheus metrics, served on GET /metrics (behind the token like every route). */
  metrics?: GpuNodeMetrics;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** A model's routes, for counting its errors. */
const MODEL_PATH = /^\/v1\/(hermes|phi3)\//;
/** Prometheus text format (prom-client), when metrics are on. */
export const METRICS_PATH = "/metrics";

export function createGpuNodeApp(deps: GpuNodeDeps) {
  const { settings, logger } = deps;
  const now = deps.now ?? (() => performance.now());
  const routeDeps: RouteDeps = {
    settings,
    logger,
    registry: deps.registry,
    lifecycle: deps.lifecycle ?? new Lifecycle(),
    version: deps.version ?? "0.0.0",
    now,
    rssBytes: deps.rssBytes ?? (() => process.memoryUsage.rss()),
    bootedAt: now(),
    ...(deps.vramPlan ? { vramPlan: deps.vramPlan } : {}),
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
  };
  const { lifecycle } = routeDeps;
  const tokenDigest = settings.token ? sha256(settings.token) : undefined;

  const app = new OpenAPIHono<GpuNodeEnv>({ defaultHook: validationHook });

  // Request id, timing and one log line per request.
  app.use("*", async (c, next) => {
    const incoming = c.req.header(REQUEST_ID_HEADER);
    const requestId = incoming && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
    const log = logger.child({ request_id: requestId });
    c.set("requestId", requestId);
    c.set("log", log);
    c.set("startedAt", now());
    await next();
    c.res.headers.set(REQUEST_ID_HEADER, requestId);
    // Lets keep-alive clients go, so the server can close during shutdown.
    if (lifecycle.shuttingDown) c.res.headers.set("Connection", "close");
    const entry = {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: round(now() - c.get("startedAt")),
    };
    const model = MODEL_PATH.exec(c.req.path)?.[1];
    if (model && c.res.status >= 400) {
      const code = c.error instanceof ServiceError ? c.error.code : "internal_error";
      deps.metrics?.error(model as "hermes" | "phi3", code);
    }
    // The edge polls health; keep those out of the info log.
    if (c.req.path === GPU_ROUTES.health && c.res.status < 400) log.debug(entry, "request");
    else log.info(entry, "request");
  });

  app.use("*", async (_c, next) => {
    if (lifecycle.shuttingDown) {
      throw new ServiceError("shutting_down", "The GPU node is shutting down.");
    }
    await next();
  });

  // Every route needs the token when one is set, health included: health names model paths and
  // the GPU, and the only caller (the edge) has the token anyway.
  app.use("*", async (c, next) => {
    if (tokenDigest) {
      const header = c.req.header("Authorization") ?? "";
      const match = /^Bearer\s+(.+)$/i.exec(header.trim());
      const given = match?.[1] ? sha256(match[1]) : undefined;
      if (!given || !timingSafeEqual(given, tokenDigest)) {
        throw new ServiceError(
          "unauthorized",
          "Missing or invalid bearer token (GPU_NODE_TOKEN).",
          {},
          { headers: { "WWW-Authenticate": 'Bearer realm="gpu-node"' } },
        );
      }
    }
    await next();
  });

  app.use(
    "*",
    bodyLimit({
      maxSize: BODY_LIMIT_BYTES,
      onError: () => {
        throw new ServiceError(
          "payload_too_large",
          `Request body larger than ${BODY_LIMIT_BYTES} bytes.`,
          { limit_bytes: BODY_LIMIT_BYTES },
        );
      },
    }),
  );

  app.use("*", methodNotAllowed({ app, onMethodNotAllowed: methodNotAllowedResponse }));

  for (const register of [...ROUTES, ...(deps.routes ?? [])]) register(app, routeDeps);

  const metrics = deps.metrics;
  if (metrics) {
    app.get(METRICS_PATH, async (c) =>
      c.body(await metrics.registry.metrics(), 200, {
        "content-type": metrics.registry.contentType,
      }),
    );
  }

  app.doc31(OPENAPI_PATH, {
    openapi: "3.1.0",
    info: {
      title: "LLM sidecar GPU node (internal API)",
      version: routeDeps.version,
      description:
        "Hermes-3 free text, schema-constrained Phi-3 proposals and JSON for any schema of the " +
        "structured-output subset (both models) for the edge. Errors: " +
        "{error, code, request_id, ...}. Streaming routes answer NDJSON (text events, then done " +
        "or error). With GPU_NODE_TOKEN set every route needs Authorization: Bearer <token>.",
    },
    security: settings.token ? [{ bearer: [] }] : [],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });

  app.notFound(notFound);
  app.onError(onError(logger));
  return app;
}

export type GpuNodeApp = ReturnType<typeof createGpuNodeApp>;

function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
