/**
 * Starts the edge on Node: settings -> database (migrated) -> GPU client -> app -> HTTP(S).
 * Used by the `npm run start:edge` entry and by tests that need a real port.
 */
import { readFileSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import pino, { type Logger as PinoLogger } from "pino";
import { openDatabase } from "../../db/client.ts";
import { migrateDatabase } from "../../db/migrate.ts";
import { createApp } from "../app.ts";
import { systemClock } from "../deps.ts";
import { gpuClientFromSettings } from "../gpu-client.ts";
import {
  assertSafeExposure,
  databaseTimeouts,
  type EdgeSettings,
  parseEdgeSettings,
} from "../settings.ts";
import { VERSION } from "../version.ts";
import { nodeAssets } from "./assets.ts";
import { createNodeGpuTransport } from "./gpu-transport.ts";
import { createFileMirror } from "./jsonl-mirror.ts";
import { closeUnreadConnectionsCleanly } from "./lingering-close.ts";
import { createPrometheusMetrics } from "./metrics.ts";

export interface RunningEdge {
  url: string;
  settings: EdgeSettings;
  /** The edge's logger (the entry logs its shutdown with it). */
  logger: PinoLogger;
  close(): Promise<void>;
}

export async function startEdge(
  env: Record<string, string | undefined>,
  options: { logger?: PinoLogger } = {},
): Promise<RunningEdge> {
  const settings = parseEdgeSettings(env);
  assertSafeExposure(settings);
  // Asynchronous writes (lines written while one is in flight go out together): a synchronous
  // write(2) per request line was ~13 % of the edge's CPU per request (BENCHMARKS.md
  // section 1). Flushed at close and on exit.
  const destination = options.logger ? undefined : pino.destination({ dest: 1, sync: false });
  const logger =
    options.logger ?? pino({ level: settings.LOG_LEVEL, base: { svc: "edge" } }, destination);
  const flush = () => {
    try {
      destination?.flushSync();
    } catch {
      // Nothing pending, or stdout gone.
    }
  };
  if (destination) process.once("exit", flush);

  const where = settings.DATABASE_URL
    ? "postgres (DATABASE_URL)"
    : `PGlite in ${settings.DATA_DIR}/pg`;
  logger.info({ database: where }, "opening database");
  const handle = await openDatabase({
    databaseUrl: settings.DATABASE_URL,
    dataDir: settings.DATA_DIR,
    timeouts: databaseTimeouts(settings),
    command: "edge",
  });
  try {
    logger.info("applying migrations");
    await migrateDatabase(handle);
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
  const mirror = settings.JSONL_MIRROR
    ? createFileMirror(settings.DATA_DIR, logger)
    : { appendLog() {}, appendFeedback() {}, close: async () => {} };

  const gpuTransport = createNodeGpuTransport();
  const app = createApp({
    settings,
    db: handle.db,
    databaseKind: handle.kind,
    gpu: gpuClientFromSettings(settings, { transport: gpuTransport.transport, logger }),
    logger,
    clock: systemClock,
    mirror,
    version: VERSION,
    runtime: "node",
    assets: nodeAssets(),
    metrics: createPrometheusMetrics(),
  });

  const tls =
    settings.TLS_CERT_FILE && settings.TLS_KEY_FILE
      ? { cert: readFileSync(settings.TLS_CERT_FILE), key: readFileSync(settings.TLS_KEY_FILE) }
      : undefined;

  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        // lingering-close.ts ends connections whose body was not read; no 500 ms destroy.
        autoCleanupIncoming: false,
        port: settings.PORT,
        hostname: settings.HOST,
        ...(tls ? { createServer: createHttpsServer, serverOptions: tls } : {}),
      },
      () => resolve(s),
    );
    s.once("error", reject);
  });
  closeUnreadConnectionsCleanly(server as HttpServer);
  const { port } = server.address() as AddressInfo;
  const host = settings.HOST.includes(":") ? `[${settings.HOST}]` : settings.HOST;
  const url = `${tls ? "https" : "http"}://${host}:${port}`;
  handle.lock?.update({ url });
  logger.info({ url, database: handle.kind, gpu_node: settings.GPU_NODE_URL }, "edge listening");

  let closing: Promise<void> | undefined;
  return {
    url,
    settings,
    logger,
    close: () => {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive sockets would hold close() open.
          (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        });
        gpuTransport.close();
        await mirror.close();
        await handle.close();
        flush();
      })();
      return closing;
    },
  };
}
