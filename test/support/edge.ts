/**
 * The edge built in-process for HTTP tests: its own database (PGlite or a Postgres schema), a
 * stand-in GPU node over real HTTP, a recording JSONL mirror. `request` goes through app.request().
 */
import pino from "pino";
import { createApp } from "../../edge/app.ts";
import { type Clock, type RecordMirror, systemClock } from "../../edge/env.ts";
import { createHttpGpuClient } from "../../edge/gpu-client.ts";
import { parseEdgeSettings } from "../../edge/settings.ts";
import { createTestDatabase, type DbKind, type TestDatabase } from "./db.ts";
import {
  type StandInGpuNode,
  type StandInOptions,
  startStandInGpuNode,
} from "./stand-in-gpu-node.ts";

export interface EdgeHarness {
  app: ReturnType<typeof createApp>;
  db: TestDatabase;
  gpu: StandInGpuNode;
  mirrored: { log: Record<string, unknown>[]; feedback: Record<string, unknown>[] };
  request(path: string, init?: RequestInit): Promise<Response>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

export async function createEdgeHarness(options: {
  kind: DbKind;
  gpu?: StandInOptions;
  env?: Record<string, string>;
  clock?: Clock;
  /** Point the edge at this URL instead of a stand-in (e.g. a closed port). */
  gpuUrl?: string;
}): Promise<EdgeHarness> {
  const db = await createTestDatabase(options.kind);
  const gpu = await startStandInGpuNode(options.gpu ?? {});
  const settings = parseEdgeSettings({
    GPU_NODE_URL: options.gpuUrl ?? gpu.url,
    LOG_LEVEL: "silent",
    ...options.env,
  });
  const mirrored: EdgeHarness["mirrored"] = { log: [], feedback: [] };
  const mirror: RecordMirror = {
    appendLog: (l) => mirrored.log.push(l),
    appendFeedback: (l) => mirrored.feedback.push(l),
  };
  const app = createApp({
    settings,
    db: db.db,
    databaseKind: db.kind,
    gpu: createHttpGpuClient({
      baseUrl: settings.GPU_NODE_URL,
      token: settings.GPU_NODE_TOKEN,
      timeoutMs: settings.GPU_TIMEOUT_MS,
    }),
    logger: pino({ level: "silent" }),
    clock: options.clock ?? systemClock,
    mirror,
    version: "test",
    runtime: "node",
  });
  const request = (path: string, init?: RequestInit) =>
    Promise.resolve(app.request(`http://edge.test${path}`, init));
  return {
    app,
    db,
    gpu,
    mirrored,
    request,
    post: (path, body, headers = {}) =>
      request(path, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    close: async () => {
      await gpu.close();
      await db.destroy();
    },
  };
}
