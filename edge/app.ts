/**
 * createApp(deps): the whole public API as a Hono app, the same on Node and on Workers.
 * The entries (node.ts, worker.ts) only parse their environment, build deps and serve.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppDeps, AppEnv } from "./deps.ts";
import {
  ApiError,
  errorResponse,
  invalidParameter,
  isOpenAiPath,
  notFound,
  onError,
} from "./errors.ts";
import { browserAccess, isReviewPath } from "./review/access.ts";
import { registerDocs } from "./review/docs.ts";
import { createReviewRoutes } from "./review/routes.tsx";
import { createSessions, type Sessions } from "./review/session.ts";
import { bodySizeLimit, jsonBodyGuard } from "./routes/body-guard.ts";
import { registerDatasets } from "./routes/datasets.ts";
import { registerFeedback } from "./routes/feedback.ts";
import { registerGenerate } from "./routes/generate.ts";
import { registerHealth } from "./routes/health.ts";
import { registerPropose } from "./routes/propose.ts";
import { registerChatCompletions } from "./routes/v1/chat-completions.ts";
import { registerListModels } from "./routes/v1/models.ts";
import { requestContext } from "./services/context.ts";

/** Paths anyone may read, with or without an API key. */
const PUBLIC_PATHS = new Set(["/health", "/health/"]);

export function createApp(deps: AppDeps) {
  const { settings, logger } = deps;
  const newId = deps.newId ?? (() => crypto.randomUUID());
  const sessions = createSessions({
    keys: settings.API_KEYS,
    secret: settings.SESSION_SECRET,
    ttlS: settings.SESSION_TTL_S,
    clock: deps.clock,
  });

  // strict: false serves every path with and without its trailing slash (the seed's clients use
  // "/generate/"); routes are declared without it.
  const app = new OpenAPIHono<AppEnv>({
    strict: false,
    defaultHook: (result, c) => {
      if (!result.success) {
        if (isOpenAiPath(c.req.path)) throw invalidParameter(result.error.issues);
        const issues = result.error.issues.map((i) => ({
          path: i.path.join("."),
          message: i.message,
        }));
        const first = issues[0];
        throw new ApiError(
          "invalid_request",
          first
            ? `Invalid request: ${first.path ? `${first.path}: ` : ""}${first.message}`
            : "Invalid request.",
          { issues },
        );
      }
    },
  });

  app.use("*", requestId());

  app.use("*", async (c, next) => {
    c.set("logger", logger);
    const started = performance.now();
    await next();
    const status = c.res.status;
    const line = {
      request_id: c.get("requestId"),
      method: c.req.method,
      route: c.req.routePath,
      path: c.req.path,
      status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
    };
    if (status >= 500) logger.warn(line, "request");
    else logger.info(line, "request");
    // The route pattern, never the raw path: unknown paths must not grow the label set.
    deps.metrics?.request(
      c.req.routePath === "*" || c.req.routePath === "/*" ? "unmatched" : c.req.routePath,
      c.req.method,
      status,
      (performance.now() - started) / 1000,
    );
  });

  app.use(
    "*",
    bodySizeLimit(settings.BODY_LIMIT_BYTES, () => {
      throw new ApiError(
        "payload_too_large",
        `Request body too large: the limit is ${settings.BODY_LIMIT_BYTES} bytes.`,
        { limit_bytes: settings.BODY_LIMIT_BYTES },
      );
    }),
  );

  // /metrics also takes METRICS_TOKEN (Prometheus), and needs it when that is the only secret.
  if (settings.METRICS_TOKEN && settings.API_KEYS.length === 0) {
    app.use("/metrics", apiKeyAuth([settings.METRICS_TOKEN], sessions));
  }
  if (settings.API_KEYS.length > 0) {
    const metricsKeys = settings.METRICS_TOKEN
      ? [...settings.API_KEYS, settings.METRICS_TOKEN]
      : settings.API_KEYS;
    app.use("/metrics", apiKeyAuth(metricsKeys, sessions));
    app.use("*", apiKeyAuth(settings.API_KEYS, sessions, new Set([...PUBLIC_PATHS, "/metrics"])));
  }

  app.use("*", async (c, next) => {
    // The review pages post HTML forms (with their own CSRF check).
    if (c.req.method === "POST" && !isReviewPath(c.req.path)) {
      const type = c.req.header("content-type") ?? "";
      if (!/^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type)) {
        throw new ApiError(
          "unsupported_media_type",
          `Content-Type must be application/json${type ? ` (got ${type})` : ""}.`,
        );
      }
    }
    await next();
  });

  app.use("*", jsonBodyGuard(settings.JSON_MAX_DEPTH));

  app.use("*", async (c, next) => {
    c.set("ctx", requestContext(c, deps, newId));
    await next();
  });

  app.use(
    "*",
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) =>
        errorResponse(
          c,
          new ApiError(
            "method_not_allowed",
            `Method ${c.req.method} is not allowed on ${c.req.path}.`,
            { allowed: methods },
            { headers: { Allow: methods.join(", ") } },
          ),
        ),
    }),
  );

  registerGenerate(app);
  registerPropose(app);
  registerFeedback(app);
  registerListModels(app);
  registerChatCompletions(app);
  registerDatasets(app);
  registerHealth(app, {
    version: deps.version,
    runtime: deps.runtime,
    databaseKind: deps.databaseKind,
    timeoutMs: settings.HEALTH_TIMEOUT_MS,
    apiKeys: settings.API_KEYS,
  });

  const metrics = deps.metrics;
  if (metrics) {
    // Behind the API key like everything else when API_KEYS is set (README: Metrics).
    app.get("/metrics", async (c) => {
      const { contentType, body } = await metrics.render();
      return c.body(body, 200, { "content-type": contentType });
    });
  }

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "LLM sidecar",
      version: deps.version,
      description:
        "Hermes-3 free text and schema-guaranteed Phi-3 trade proposals, with a feedback loop. " +
        "Errors: {error, code, request_id, ...}; on /v1 (OpenAI-compatible) OpenAI's " +
        "{error: {message, type, param, code}}.",
    },
    security: settings.API_KEYS.length > 0 ? [{ bearer: [] }] : [],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  registerDocs(app, deps.assets);
  // The review sub-app adds its own variables (session, csrf) to AppEnv's; Hono's route() types
  // want the parent's env exactly, hence the cast.
  app.route(
    "/review",
    createReviewRoutes({ sessions, clock: deps.clock, runtime: deps.runtime }) as never,
  );

  app.notFound(notFound);
  app.onError(onError);
  return app;
}

export type App = ReturnType<typeof createApp>;

function apiKeyAuth(
  keys: string[],
  sessions: Sessions,
  skip: ReadonlySet<string> = PUBLIC_PATHS,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (skip.has(c.req.path)) return next();
    const browser = await browserAccess(c, sessions);
    if (browser === "pass") return next();
    if (browser === "login") return c.redirect(`/review/login?next=${c.req.path}`, 303);
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = match?.[1]?.trim();
    let ok = false;
    if (given) {
      // Compare against every key so timing does not reveal which one matched.
      for (const key of keys) if (await timingSafeEqual(key, given)) ok = true;
    }
    if (!ok) {
      throw new ApiError(
        "unauthorized",
        given ? "Invalid API key." : "Missing API key: send Authorization: Bearer <key>.",
        {},
        { headers: { "WWW-Authenticate": 'Bearer realm="llm-sidecar"' } },
      );
    }
    await next();
  };
}
