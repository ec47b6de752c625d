/**
 * Cloudflare Workers entry of the edge (wrangler.toml `main`). Builds the same app as the Node
 * entry (createApp) from the Worker's env, parsed by the same zod schema (edge/settings.ts).
 *
 * Deliberate differences from Node:
 * - Postgres only, through the HYPERDRIVE binding, with one postgres-js client per request (as
 *   Hyperdrive recommends: it pools for us), closed after the response body has been sent, so the
 *   streaming export keeps its connection until its last line (and an idle one is let go).
 * - No JSONL mirror file (no file system): GET /feedback/phi3/export streams the record.
 * - No migrations at start-up: `npm run db:migrate` against DATABASE_URL before deploying.
 * - API_KEYS is required (a Worker is public); without it every request gets a 503 envelope.
 */
import type { Context, ExecutionContext } from "hono";
import { createPostgresDatabase } from "../db/client-postgres.ts";
import type { DatabaseHandle } from "../db/database.ts";
import { type ErrorBody, statusOf } from "../gpu-node/contract/index.ts";
// A Text module (wrangler.toml [[rules]]): /docs serves Scalar's script from the bundle.
// @ts-expect-error: a text import has no type declarations (and the package does not export it).
import apiReferenceJs from "../node_modules/@scalar/api-reference/dist/browser/standalone.js";
import { createApp } from "./app.ts";
import { type AppEnv, type Logger, noopMirror, systemClock } from "./deps.ts";
import { isOpenAiPath, type OpenAiErrorBody, openAiErrorBody } from "./errors.ts";
import { gpuClientFromSettings } from "./gpu-client.ts";
import {
  assertSafeExposure,
  databaseTimeouts,
  type EdgeSettings,
  parseEdgeSettings,
} from "./settings.ts";
import { VERSION } from "./version.ts";

// Nothing but the handler may be exported: workerd rejects a main module exporting other values.

/** The part of Cloudflare's Hyperdrive binding we use. */
interface HyperdriveBinding {
  connectionString: string;
}

/** The Worker's env: the HYPERDRIVE binding, [vars] and secrets (strings). */
interface WorkerEnv {
  HYPERDRIVE?: HyperdriveBinding;
  [name: string]: unknown;
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: 100 };

/** JSON lines on the console (what Workers Logs index), pino-shaped: level, time, msg, fields. */
function createConsoleLogger(
  level: EdgeSettings["LOG_LEVEL"],
  base: Record<string, unknown> = {},
): Logger {
  const min = LEVELS[level];
  const write = (name: "debug" | "info" | "warn" | "error") => (obj: object, msg?: string) => {
    if (LEVELS[name] < min) return;
    const time = new Date().toISOString();
    let line: string;
    try {
      line = JSON.stringify({ level: name, time, ...base, ...obj, msg }, (_key, value: unknown) =>
        value instanceof Error
          ? { type: value.name, message: value.message, stack: value.stack, cause: value.cause }
          : typeof value === "bigint"
            ? String(value)
            : value,
      );
    } catch (err) {
      // A circular object must not turn a log line into a failed request.
      line = JSON.stringify({ level: name, time, ...base, msg, log_error: String(err) });
    }
    (name === "error" ? console.error : name === "warn" ? console.warn : console.log)(line);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

/** Seconds a request's database connection may sit idle (Hyperdrive makes reconnecting cheap). */
const IDLE_CONNECTION_S = 5;

/** What the per-request db factory reads from Hono's `c.env` (the worker passes it per request). */
interface RequestScope {
  database(): DatabaseHandle["db"];
}

type Built = { app: ReturnType<typeof createApp>; settings: EdgeSettings } | { problem: string };

/** One app per isolate and env (env is stable for the isolate's life). */
const built = new WeakMap<object, Built>();

function build(env: WorkerEnv): Built {
  const strings: Record<string, string> = {};
  // [vars] may hold TOML numbers or booleans; the schema reads strings, as from process.env.
  for (const [key, value] of Object.entries(env)) {
    if (typeof value === "string") strings[key] = value;
    else if (typeof value === "number" || typeof value === "boolean") strings[key] = String(value);
  }
  let settings: EdgeSettings;
  try {
    settings = parseEdgeSettings(strings);
    // A Worker is reachable from the internet: the same check as a non-loopback HOST on Node.
    assertSafeExposure(settings, "workers.dev");
  } catch (err) {
    const message = (err as Error).message;
    createConsoleLogger("error", { svc: "edge" }).error({ err }, "edge misconfigured");
    // The public answer names the variable, not its value.
    const name = /^invalid setting ([\w/]+)/.exec(message)?.[1];
    return {
      problem: name
        ? `Service misconfigured: invalid setting ${name} (see the Worker's logs).`
        : /API_KEYS/.test(message)
          ? "Service misconfigured: API_KEYS is not set; a public Worker requires API keys " +
            "(wrangler secret put API_KEYS)."
          : "Service misconfigured (see the Worker's logs).",
    };
  }
  if (!env.HYPERDRIVE?.connectionString) {
    return { problem: "Service misconfigured: the HYPERDRIVE binding is missing." };
  }
  const logger = createConsoleLogger(settings.LOG_LEVEL, { svc: "edge", runtime: "workers" });
  const app = createApp({
    settings,
    db: (c: Context<AppEnv>) => (c.env as RequestScope).database(),
    databaseKind: "postgres",
    gpu: gpuClientFromSettings(settings, { logger }),
    logger,
    clock: systemClock,
    mirror: noopMirror,
    version: VERSION,
    runtime: "workers",
    assets: { apiReferenceJs: () => apiReferenceJs as string },
  });
  return { app, settings };
}

function misconfigured(problem: string, path: string): Response {
  const requestId = crypto.randomUUID();
  const body: ErrorBody | OpenAiErrorBody = isOpenAiPath(path)
    ? openAiErrorBody("misconfigured", problem, 503)
    : { error: problem, code: "misconfigured", request_id: requestId };
  return new Response(JSON.stringify(body), {
    status: statusOf("misconfigured"),
    headers: { "content-type": "application/json", "x-request-id": requestId },
  });
}

/**
 * Hands `release` to waitUntil once the body has been fully sent (or the client went away):
 * a streamed export still reads from the database after the handler has returned.
 */
function releaseAfterBody(
  res: Response,
  release: () => Promise<void>,
  ctx: ExecutionContext,
): Response {
  if (!res.body) {
    ctx.waitUntil(release());
    return res;
  }
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const sent = res.body.pipeTo(writable).catch(() => {
    // The client went away or the stream failed; the app has logged what it knows.
  });
  ctx.waitUntil(sent.then(release));
  return new Response(readable, res);
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
    let entry = built.get(env);
    if (!entry) {
      entry = build(env);
      built.set(env, entry);
    }
    if ("problem" in entry) return misconfigured(entry.problem, new URL(request.url).pathname);

    // Opened on first use only: 401s, 404s and validation errors never touch the database.
    let handle: DatabaseHandle | undefined;
    const connectionString = (env.HYPERDRIVE as HyperdriveBinding).connectionString;
    const scope: RequestScope = {
      database() {
        handle ??= createPostgresDatabase({
          url: connectionString,
          max: 5,
          fetchTypes: false,
          // A client that stops reading an export without hanging up would hold the connection
          // until the runtime ends the request: an idle one is let go (and reopened if needed).
          idleTimeoutS: IDLE_CONNECTION_S,
          timeouts: databaseTimeouts(entry.settings),
        });
        return handle.db;
      },
    };
    const res = await entry.app.fetch(request, scope, ctx);
    return releaseAfterBody(
      res,
      async () => {
        await handle?.close().catch(() => {});
      },
      ctx,
    );
  },
};
