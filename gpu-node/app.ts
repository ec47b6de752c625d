/**
 * The GPU node's HTTP service: the internal API of contract.ts over the two model runtimes.
 *
 * createGpuNodeApp(deps) builds the Hono app and nothing else: it never loads models (main.ts
 * does, in the background) and never reads the environment. Tests drive it with app.request().
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import type { z } from "zod";
import {
  critiquePrompt,
  DEADLINE_HEADER,
  type ErrorCode,
  GPU_ROUTES,
  type GpuNodeHealth,
  HermesCritiqueRequest,
  HermesGenerateRequest,
  type HermesGenerateResponse,
  MESSAGES,
  overallStatus,
  Phi3GenerateRequest,
  type Phi3GenerateResponse,
  REQUEST_ID_HEADER,
  ServiceError,
  type Timings,
} from "./contract/index.ts";
import { QueueFullError, type WorkQueue } from "./queue.ts";
import { type GenerationTimings, GpuNodeError, type HermesResult } from "./runtime.ts";
import { requestSignal } from "./service/abort.ts";
import { HttpError, RequestAbortedError } from "./service/errors.ts";
import { Lifecycle } from "./service/lifecycle.ts";
import type { ModelRegistry, ModelSlot, RuntimeBase } from "./service/registry.ts";
import type { GpuNodeSettings } from "./settings.ts";
import { registerJsonRoutes } from "./structured/routes.ts";

/** Largest request body, bytes. Prompts are bounded by the context window long before this. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export type AppSettings = Pick<GpuNodeSettings, "token" | "maxRequestMs"> & {
  hermes: Pick<GpuNodeSettings["hermes"], "systemPrompt">;
};

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
}

type GpuNodeEnv = {
  Variables: { requestId: string; log: Logger; startedAt: number };
};

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** How long /v1/health waits for a VRAM reading before leaving it out. */
const VRAM_TIMEOUT_MS = 1_000;
const MIB = 1024 * 1024;

const ALLOWED_METHODS: Record<string, string> = {
  [GPU_ROUTES.health]: "GET, HEAD",
  [GPU_ROUTES.hermesGenerate]: "POST",
  [GPU_ROUTES.hermesCritique]: "POST",
  [GPU_ROUTES.phi3Generate]: "POST",
  [GPU_ROUTES.hermesJson]: "POST",
  [GPU_ROUTES.phi3Json]: "POST",
};

const round = (ms: number) => Math.round(ms * 10) / 10;

export function createGpuNodeApp(deps: GpuNodeDeps) {
  const { settings, logger, registry } = deps;
  const lifecycle = deps.lifecycle ?? new Lifecycle();
  const now = deps.now ?? (() => performance.now());
  const rssBytes = deps.rssBytes ?? (() => process.memoryUsage.rss());
  const bootedAt = now();
  const tokenDigest = settings.token ? sha256(settings.token) : undefined;

  const app = new Hono<GpuNodeEnv>();

  function errorResponse(
    c: Context<GpuNodeEnv>,
    status: ContentfulStatusCode,
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ): Response {
    const requestId = c.get("requestId") ?? randomUUID();
    const body: Record<string, unknown> = { error: message, code, request_id: requestId };
    for (const [key, value] of Object.entries(details)) {
      if (!(key in body)) body[key] = value;
    }
    const retryAfter = details.retry_after_s;
    if (typeof retryAfter === "number") headers["Retry-After"] = String(retryAfter);
    return c.json(body, status, { ...headers, [REQUEST_ID_HEADER]: requestId });
  }

  // Request id, timing and one log line per request.
  app.use("*", async (c, next) => {
    const incoming = c.req.header(REQUEST_ID_HEADER);
    const requestId = incoming && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
    const log = logger.child({ request_id: requestId });
    c.set("requestId", requestId);
    c.set("log", log);
    c.set("startedAt", now());
    c.header(REQUEST_ID_HEADER, requestId);
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
    // The edge polls health; keep those out of the info log.
    if (c.req.path === GPU_ROUTES.health && c.res.status < 400) log.debug(entry, "request");
    else log.info(entry, "request");
  });

  app.use("*", async (c, next) => {
    if (lifecycle.shuttingDown) {
      return errorResponse(c, 503, "shutting_down", "The GPU node is shutting down.");
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
        return errorResponse(
          c,
          401,
          "unauthorized",
          "Missing or invalid bearer token (GPU_NODE_TOKEN).",
          {},
          { "WWW-Authenticate": 'Bearer realm="gpu-node"' },
        );
      }
    }
    await next();
  });

  app.use(
    "*",
    bodyLimit({
      maxSize: BODY_LIMIT_BYTES,
      onError: (c) =>
        errorResponse(
          c as Context<GpuNodeEnv>,
          413,
          "payload_too_large",
          `Request body larger than ${BODY_LIMIT_BYTES} bytes.`,
          { limit_bytes: BODY_LIMIT_BYTES },
        ),
    }),
  );

  // ---------------------------------------------------------------------------------------------
  // Routes
  // ---------------------------------------------------------------------------------------------

  app.get(GPU_ROUTES.health, async (c) => {
    const hermes = registry.hermes.health();
    const phi3 = registry.phi3.health();
    const runtimes: RuntimeBase[] = [registry.hermes.ready(), registry.phi3.ready()].flatMap(
      (ready) => (ready ? [ready.runtime] : []),
    );
    const onGpu = runtimes.find((runtime) => runtime.device.kind === "cuda");
    const deviceName = (onGpu ?? runtimes[0])?.device.name;
    const vram = await readVram(registry, c.get("log"));
    const body: GpuNodeHealth = {
      status: overallStatus(hermes.state, phi3.state),
      hermes_loaded: hermes.loaded,
      phi3_loaded: phi3.loaded,
      phi3_model_file_exists: phi3.file_exists,
      device: onGpu ? "cuda" : "cpu",
      ...(deviceName ? { device_name: deviceName } : {}),
      memory: {
        rss_mib: Math.round(rssBytes() / MIB),
        ...(vram ? { vram_used_mib: vram.usedMiB, vram_total_mib: vram.totalMiB } : {}),
      },
      models: { hermes, phi3 },
      version: deps.version ?? "0.0.0",
      uptime_s: Math.round((now() - bootedAt) / 1000),
    };
    return c.json(body);
  });

  app.post(GPU_ROUTES.hermesGenerate, async (c) => {
    const body = await readBody(c, HermesGenerateRequest);
    if (body.prompt === undefined) {
      throw new HttpError(400, "invalid_request", "messages are not supported yet; send prompt.");
    }
    const prompt = body.prompt;
    const { runtime, queue } = requireReady(registry.hermes, MESSAGES.hermesNotLoaded);
    const { value, queueMs } = await runQueued(c, queue, (signal) =>
      runtime.generate(
        {
          prompt,
          systemPrompt: body.system_prompt ?? settings.hermes.systemPrompt,
          maxTokens: body.max_tokens,
          ...(body.sampling ? { sampling: body.sampling } : {}),
        },
        signal,
      ),
    );
    return c.json(hermesResponse(c, value, runtime.modelName, queueMs));
  });

  app.post(GPU_ROUTES.hermesCritique, async (c) => {
    const body = await readBody(c, HermesCritiqueRequest);
    const { runtime, queue } = requireReady(registry.hermes, MESSAGES.hermesNotLoaded);
    const { value, queueMs } = await runQueued(c, queue, (signal) =>
      runtime.generate(
        {
          prompt: critiquePrompt(body.proposal),
          systemPrompt: settings.hermes.systemPrompt,
          // The seed gave the critique twice the caller's budget; where the context cannot hold
          // that, the caller's own budget is enough.
          maxTokens: 2 * body.max_length,
          minTokens: body.max_length,
          ...(body.sampling ? { sampling: body.sampling } : {}),
        },
        signal,
      ),
    );
    return c.json(hermesResponse(c, value, runtime.modelName, queueMs));
  });

  app.post(GPU_ROUTES.phi3Generate, async (c) => {
    const body = await readBody(c, Phi3GenerateRequest);
    const { runtime, queue } = requireReady(registry.phi3, MESSAGES.phi3NotLoaded);
    const { value, queueMs } = await runQueued(c, queue, (signal) =>
      runtime.generate(
        {
          prompt: body.prompt,
          maxTokens: body.max_tokens,
          ...(body.sampling ? { sampling: body.sampling } : {}),
        },
        signal,
      ),
    );
    const response: Phi3GenerateResponse = {
      proposal: value.proposal,
      raw: value.raw,
      model: runtime.modelName,
      finish_reason: value.finishReason,
      usage: value.usage,
      timings: timings(c, value.timings, queueMs),
    };
    return c.json(response);
  });

  registerJsonRoutes(app, {
    registry,
    hermesSystemPrompt: settings.hermes.systemPrompt,
    readBody,
    requireReady,
    runQueued,
    timings,
  });

  // ---------------------------------------------------------------------------------------------
  // The one error mapping
  // ---------------------------------------------------------------------------------------------

  app.notFound((c) => {
    const allowed = ALLOWED_METHODS[c.req.path];
    if (allowed) {
      return errorResponse(
        c,
        405,
        "method_not_allowed",
        `Method ${c.req.method} not allowed on ${c.req.path}.`,
        { allowed },
        { Allow: allowed },
      );
    }
    return errorResponse(c, 404, "not_found", `No route ${c.req.method} ${c.req.path}.`);
  });

  app.onError((error, c) => {
    const log = c.get("log") ?? logger;
    if (
      error instanceof GpuNodeError ||
      error instanceof HttpError ||
      error instanceof ServiceError
    ) {
      const headers = error instanceof GpuNodeError ? {} : error.headers;
      if (error.status >= 500)
        log.warn({ code: error.code, details: error.details }, error.message);
      if (error.status === 499) {
        log.info({ code: error.code }, error.message);
        return withRequestId(c, new Response(null, { status: 499 }));
      }
      return errorResponse(c, error.status, error.code, error.message, error.details, headers);
    }
    log.error({ err: error }, "unhandled error");
    return errorResponse(c, 500, "internal_error", "Internal error on the GPU node.");
  });

  // ---------------------------------------------------------------------------------------------
  // Helpers that need the app's dependencies
  // ---------------------------------------------------------------------------------------------

  function requireReady<R extends RuntimeBase>(slot: ModelSlot<R>, message: string) {
    const ready = slot.ready();
    if (ready) return ready;
    throw new HttpError(503, "model_not_loaded", message, {
      model: slot.key,
      state: slot.state,
      reason: slot.unavailableReason(),
    });
  }

  /** Runs the work in the model's queue under the request's signal; maps the ways it can stop. */
  async function runQueued<T>(
    c: Context<GpuNodeEnv>,
    queue: WorkQueue,
    work: (signal: AbortSignal) => Promise<T>,
  ) {
    const deadlineMs = requestDeadline(c);
    const abort = requestSignal({
      client: c.req.raw.signal,
      shutdown: lifecycle.abortSignal,
      timeoutMs: deadlineMs - (now() - c.get("startedAt")),
      deadlineMs,
    });
    try {
      return await queue.run(work, abort.signal);
    } catch (error) {
      if (error instanceof QueueFullError) {
        throw new HttpError(429, "queue_full", "The model's queue is full; retry later.", {
          retry_after_s: error.retryAfterS,
          queue: queue.stats(),
        });
      }
      const reason: unknown = abort.signal.aborted ? abort.signal.reason : undefined;
      if (reason instanceof RequestAbortedError) {
        switch (reason.kind) {
          case "deadline":
            throw new HttpError(504, "gpu_node_timeout", `Generation stopped: ${reason.message}.`, {
              deadline_ms: reason.deadlineMs,
            });
          case "shutdown":
            throw new HttpError(503, "shutting_down", "The GPU node is shutting down.");
          case "client":
            // Nobody is left to read a response; the 499 only shows in the log.
            throw new HttpError(499, "request_aborted", "Client disconnected; generation stopped.");
        }
      }
      throw error;
    } finally {
      abort.dispose();
    }
  }

  /** The caller's deadline (DEADLINE_HEADER), capped by the node's own maximum. */
  function requestDeadline(c: Context<GpuNodeEnv>): number {
    const header = c.req.header(DEADLINE_HEADER);
    if (header === undefined) return settings.maxRequestMs;
    const value = Number(header.trim());
    if (!/^\d+$/.test(header.trim()) || !Number.isSafeInteger(value) || value < 1) {
      throw new HttpError(
        400,
        "invalid_request",
        `${DEADLINE_HEADER} must be a positive integer (milliseconds).`,
        { header: DEADLINE_HEADER, value: header },
      );
    }
    return Math.min(value, settings.maxRequestMs);
  }

  function timings(c: Context<GpuNodeEnv>, runtime: GenerationTimings, queueMs: number): Timings {
    return {
      queue_ms: round(queueMs),
      prompt_ms: round(runtime.prompt_ms),
      generate_ms: round(runtime.generate_ms),
      total_ms: round(now() - c.get("startedAt")),
    };
  }

  function hermesResponse(
    c: Context<GpuNodeEnv>,
    result: HermesResult,
    model: string,
    queueMs: number,
  ): HermesGenerateResponse {
    return {
      text: result.text,
      model,
      finish_reason: result.finishReason,
      usage: result.usage,
      timings: timings(c, result.timings, queueMs),
    };
  }

  return app;
}

export type GpuNodeApp = ReturnType<typeof createGpuNodeApp>;

function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function withRequestId(c: Context<GpuNodeEnv>, response: Response): Response {
  const requestId = c.get("requestId");
  if (requestId) response.headers.set(REQUEST_ID_HEADER, requestId);
  return response;
}

/** Reads and validates a JSON body; every failure is a 4xx in the envelope. */
async function readBody<S extends z.ZodType>(
  c: Context<GpuNodeEnv>,
  schema: S,
): Promise<z.output<S>> {
  const type = c.req.header("Content-Type") ?? "";
  if (!/^application\/(.+\+)?json\b/i.test(type.trim())) {
    throw new HttpError(415, "unsupported_media_type", "Send the body as application/json.", {
      content_type: type || null,
    });
  }
  let input: unknown;
  try {
    input = await c.req.json();
  } catch {
    throw new HttpError(400, "invalid_json", "The request body is not valid JSON.");
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new HttpError(400, "invalid_request", "The request body does not match the schema.", {
      issues: result.error.issues.map((issue) => ({
        path: issue.path.map(String).join("."),
        code: issue.code,
        message: issue.message,
      })),
    });
  }
  return result.data;
}

async function readVram(registry: ModelRegistry, log: Logger) {
  const runtime = registry.hermes.ready()?.runtime;
  if (!runtime?.vram || runtime.device.kind !== "cuda") return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      runtime.vram(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), VRAM_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    log.warn({ err: error }, "could not read VRAM usage");
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
