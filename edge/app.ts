/**
 * createApp(deps): the whole public API as a Hono app, the same on Node and on Workers.
 * The entries (node.ts, worker.ts) only parse their environment, build deps and serve.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppDeps, AppEnv } from "./deps.ts";
import { ApiError, errorBody, notFound, onError } from "./errors.ts";
import { registerFeedback } from "./routes/feedback.ts";
import { registerGenerate } from "./routes/generate.ts";
import { registerHealth } from "./routes/health.ts";
import { registerPropose } from "./routes/propose.ts";

/** Paths anyone may read, with or without an API key. */
const PUBLIC_PATHS = new Set(["/health", "/health/"]);

export function createApp(deps: AppDeps) {
  const { settings, logger } = deps;
  const newId = deps.newId ?? (() => crypto.randomUUID());

  // strict: false serves every path with and without its trailing slash (the seed's clients use
  // "/generate/"); routes are declared without it.
  const app = new OpenAPIHono<AppEnv>({
    strict: false,
    defaultHook: (result) => {
      if (!result.success) {
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
  });

  app.use(
    "*",
    bodyLimit({
      maxSize: settings.BODY_LIMIT_BYTES,
      onError: () => {
        throw new ApiError(
          "payload_too_large",
          `Request body too large: the limit is ${settings.BODY_LIMIT_BYTES} bytes.`,
          { limit_bytes: settings.BODY_LIMIT_BYTES },
        );
      },
    }),
  );

  if (settings.API_KEYS.length > 0) app.use("*", apiKeyAuth(settings.API_KEYS));

  app.use("*", async (c, next) => {
    if (c.req.method === "POST") {
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

  app.use("*", async (c, next) => {
    const signal = AbortSignal.any([
      c.req.raw.signal,
      AbortSignal.timeout(settings.REQUEST_TIMEOUT_MS),
    ]);
    c.set("ctx", {
      db: typeof deps.db === "function" ? deps.db(c) : deps.db,
      gpu: deps.gpu,
      logger,
      clock: deps.clock,
      mirror: deps.mirror,
      settings,
      requestId: c.get("requestId"),
      signal,
      newId,
    });
    await next();
  });

  app.use(
    "*",
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) => {
        c.header("Allow", methods.join(", "));
        return c.json(
          errorBody(
            c,
            "method_not_allowed",
            `Method ${c.req.method} is not allowed on ${c.req.path}.`,
            {
              allowed: methods,
            },
          ),
          405,
        );
      },
    }),
  );

  registerGenerate(app);
  registerPropose(app);
  registerFeedback(app);
  registerHealth(app, {
    version: deps.version,
    runtime: deps.runtime,
    databaseKind: deps.databaseKind,
    timeoutMs: settings.HEALTH_TIMEOUT_MS,
  });

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "LLM sidecar",
      version: deps.version,
      description:
        "Hermes-3 free text and schema-guaranteed Phi-3 trade proposals, with a feedback loop. " +
        "Errors: {error, code, request_id, ...}.",
    },
    security: settings.API_KEYS.length > 0 ? [{ bearer: [] }] : [],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  app.get("/docs", Scalar({ url: "/openapi.json", pageTitle: "LLM sidecar API" }));

  app.notFound(notFound);
  app.onError(onError);
  return app;
}

export type App = ReturnType<typeof createApp>;

function apiKeyAuth(keys: string[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (PUBLIC_PATHS.has(c.req.path)) return next();
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
