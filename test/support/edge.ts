/**
 * The edge under test, on one of several targets, behind one interface so that the same API cases
 * run on each:
 * - node/pglite and node/postgres: the app built in-process (app.request()), its own database
 *   (in-memory PGlite or a Postgres schema), a recording JSONL mirror;
 * - workers/postgres: wrangler.toml's Worker in workerd over HTTP, reaching its own Postgres schema
 *   through the HYPERDRIVE binding (test/support/worker.ts).
 * Every target talks to a stand-in GPU node over real HTTP.
 */
import pino from "pino";
import { createApp } from "../../edge/app.ts";
import { type Clock, type Logger, type RecordMirror, systemClock } from "../../edge/deps.ts";
import { gpuClientFromSettings } from "../../edge/gpu-client.ts";
import type { EdgeMetrics } from "../../edge/metrics.ts";
import { nodeAssets } from "../../edge/node-runtime/assets.ts";
import { createNodeGpuTransport } from "../../edge/node-runtime/gpu-transport.ts";
import { exportLines } from "../../edge/services/export.ts";
import { parseEdgeSettings } from "../../edge/settings.ts";
import { createTestDatabase, DB_KINDS, type DbKind, type TestDatabase } from "./db.ts";
import {
  type StandInGpuNode,
  type StandInOptions,
  startStandInGpuNode,
} from "./stand-in-gpu-node.ts";
import { createWorkerRole, startWorker } from "./worker.ts";

export interface EdgeTarget {
  runtime: "node" | "workers";
  kind: DbKind;
  label: string;
}

/** The in-process targets: one per database the suite runs on. */
export const NODE_TARGETS: EdgeTarget[] = DB_KINDS.map((kind) => ({
  runtime: "node",
  kind,
  label: `node, ${kind}`,
}));

export const WORKERS_TARGET: EdgeTarget = {
  runtime: "workers",
  kind: "postgres",
  label: "workerd, postgres through Hyperdrive",
};

export interface RecordedLines {
  log: Record<string, unknown>[];
  feedback: Record<string, unknown>[];
}

export interface EdgeHarness {
  target: EdgeTarget;
  db: TestDatabase;
  gpu: StandInGpuNode;
  /** What /health reports as edge.version. */
  version: string;
  request(path: string, init?: RequestInit): Promise<Response>;
  /** The edge's base URL and a fetch that reaches it (in-process: app.request), e.g. for an SDK. */
  baseUrl: string;
  fetch: typeof fetch;
  /** A key the edge accepts (or a placeholder when it has none), for SDK clients. */
  apiKey: string;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  /**
   * The seed-shaped JSONL lines recorded so far, in order. Node: what the edge appended to its
   * mirror. Workers has no mirror: the same lines read straight from the test's database.
   */
  recorded(): Promise<RecordedLines>;
  close(): Promise<void>;
}

export interface EdgeHarnessOptions {
  /** Where the edge runs; `kind` alone means in-process Node on that database. */
  target?: EdgeTarget;
  kind?: DbKind;
  gpu?: StandInOptions;
  env?: Record<string, string>;
  /** In-process targets only (a Worker reads the real clock). */
  clock?: Clock;
  /** Point the edge at this URL instead of a stand-in (e.g. a closed port). */
  gpuUrl?: string;
  /** In-process targets only: the edge's logger (default: silent). */
  logger?: Logger;
  /** In-process targets only: the edge's metrics (served on /metrics). */
  metrics?: EdgeMetrics;
}

export async function createEdgeHarness(options: EdgeHarnessOptions): Promise<EdgeHarness> {
  const target = options.target ?? NODE_TARGETS.find((t) => t.kind === (options.kind ?? "pglite"));
  if (!target) throw new Error(`no target for ${options.kind}`);
  const db = await createTestDatabase(target.kind);
  let gpu: StandInGpuNode | undefined;
  try {
    gpu = await startStandInGpuNode(options.gpu ?? {});
    const env = { GPU_NODE_URL: options.gpuUrl ?? gpu.url, LOG_LEVEL: "silent", ...options.env };
    const parts = { target, db, gpu, env };
    return target.runtime === "node"
      ? buildInProcess(parts, options.clock, options.logger, options.metrics)
      : await startOnWorkers(parts, options);
  } catch (err) {
    await gpu?.close();
    await db.destroy();
    throw err;
  }
}

interface Parts {
  target: EdgeTarget;
  db: TestDatabase;
  gpu: StandInGpuNode;
  env: Record<string, string>;
}

function requester(
  base: string,
  send: (url: string, init?: RequestInit) => Promise<Response>,
  defaultHeaders: Record<string, string> = {},
) {
  const request = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    for (const [k, v] of Object.entries(defaultHeaders)) if (!headers.has(k)) headers.set(k, v);
    return send(`${base}${path}`, { ...init, headers });
  };
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    request(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  return { request, post };
}

function buildInProcess(
  { target, db, gpu, env }: Parts,
  clock?: Clock,
  logger?: Logger,
  metrics?: EdgeMetrics,
): EdgeHarness {
  const settings = parseEdgeSettings(env);
  // The Node entry's transport to the GPU node, as in production.
  const transport = createNodeGpuTransport();
  const mirrored: RecordedLines = { log: [], feedback: [] };
  const mirror: RecordMirror = {
    appendLog: (l) => mirrored.log.push(l),
    appendFeedback: (l) => mirrored.feedback.push(l),
  };
  const app = createApp({
    settings,
    db: db.db,
    databaseKind: db.kind,
    gpu: gpuClientFromSettings(settings, { transport: transport.transport }),
    logger: logger ?? pino({ level: "silent" }),
    clock: clock ?? systemClock,
    mirror,
    version: "test",
    runtime: "node",
    assets: nodeAssets(),
    ...(metrics ? { metrics } : {}),
  });
  const send = (url: string | URL | Request, init?: RequestInit) =>
    Promise.resolve(app.request(url instanceof Request ? url : String(url), init));
  const http = requester("http://edge.test", send);
  return {
    target,
    db,
    gpu,
    version: "test",
    ...http,
    baseUrl: "http://edge.test",
    fetch: send as typeof fetch,
    apiKey: settings.API_KEYS[0] ?? "no-key-needed",
    recorded: async () => ({ log: [...mirrored.log], feedback: [...mirrored.feedback] }),
    close: async () => {
      transport.close();
      await gpu.close();
      await db.destroy();
    },
  };
}

/** A key the Worker requires (it refuses to serve without API_KEYS); sent unless a test sets one. */
const WORKER_TEST_KEY = "worker-test-key";

async function startOnWorkers(
  { target, db, gpu, env }: Parts,
  options: EdgeHarnessOptions,
): Promise<EdgeHarness> {
  if (options.clock) throw new Error("a Worker reads the real clock; clock is in-process only");
  const { VERSION } = await import("../../edge/version.ts");
  const testSetsKeys = env.API_KEYS !== undefined;
  const vars = { API_KEYS: WORKER_TEST_KEY, ...env };
  const role = await createWorkerRole(db);
  let worker: Awaited<ReturnType<typeof startWorker>>;
  try {
    worker = await startWorker({ connectionString: role.url, vars });
  } catch (err) {
    await role.drop();
    throw err;
  }
  const http = requester(
    worker.url,
    (url, init) => fetch(url, init),
    testSetsKeys ? {} : { authorization: `Bearer ${WORKER_TEST_KEY}` },
  );
  return {
    target,
    db,
    gpu,
    version: VERSION,
    ...http,
    // A real http://127.0.0.1:port (a browser can open it).
    baseUrl: worker.url,
    fetch: (input, init) => fetch(input, init),
    apiKey: testSetsKeys ? (env.API_KEYS?.split(",")[0] ?? "") : WORKER_TEST_KEY,
    recorded: async () => {
      const lines: RecordedLines = { log: [], feedback: [] };
      for await (const line of exportLines(db.db, { kind: "log" })) lines.log.push(line);
      for await (const line of exportLines(db.db, { kind: "feedback" })) lines.feedback.push(line);
      return lines;
    },
    close: async () => {
      await worker.close();
      await gpu.close();
      await db.destroy();
      await role.drop();
    },
  };
}
