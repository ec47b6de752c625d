/**
 * Starts the edge on Node: settings -> database (migrated) -> GPU client -> app -> HTTP(S).
 * Used by the `npm run start:edge` entry and by tests that need a real port.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import pino, { type Logger as PinoLogger } from "pino";
import { openDatabase } from "../../db/client.ts";
import { migrateDatabase } from "../../db/migrate.ts";
import { createApp } from "../app.ts";
import { systemClock } from "../deps.ts";
import { gpuClientFromSettings } from "../gpu-client.ts";
import { assertSafeExposure, type EdgeSettings, parseEdgeSettings } from "../settings.ts";
import { VERSION } from "../version.ts";
import { createFileMirror } from "./jsonl-mirror.ts";

export interface RunningEdge {
  url: string;
  settings: EdgeSettings;
  close(): Promise<void>;
}

export async function startEdge(
  env: Record<string, string | undefined>,
  options: { logger?: PinoLogger } = {},
): Promise<RunningEdge> {
  const settings = parseEdgeSettings(env);
  assertSafeExposure(settings);
  const logger = options.logger ?? pino({ level: settings.LOG_LEVEL, base: { svc: "edge" } });

  const where = settings.DATABASE_URL
    ? "postgres (DATABASE_URL)"
    : `PGlite in ${settings.DATA_DIR}/pg`;
  logger.info({ database: where }, "opening database");
  const handle = await openDatabase({
    databaseUrl: settings.DATABASE_URL,
    dataDir: settings.DATA_DIR,
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

  const app = createApp({
    settings,
    db: handle.db,
    databaseKind: handle.kind,
    gpu: gpuClientFromSettings(settings),
    logger,
    clock: systemClock,
    mirror,
    version: VERSION,
    runtime: "node",
  });

  const tls =
    settings.TLS_CERT_FILE && settings.TLS_KEY_FILE
      ? { cert: readFileSync(settings.TLS_CERT_FILE), key: readFileSync(settings.TLS_KEY_FILE) }
      : undefined;

  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        port: settings.PORT,
        hostname: settings.HOST,
        ...(tls ? { createServer: createHttpsServer, serverOptions: tls } : {}),
      },
      () => resolve(s),
    );
    s.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = settings.HOST.includes(":") ? `[${settings.HOST}]` : settings.HOST;
  const url = `${tls ? "https" : "http"}://${host}:${port}`;
  logger.info({ url, database: handle.kind, gpu_node: settings.GPU_NODE_URL }, "edge listening");

  let closing: Promise<void> | undefined;
  return {
    url,
    settings,
    close: () => {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive sockets would hold close() open.
          (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        });
        await mirror.close();
        await handle.close();
      })();
      return closing;
    },
  };
}
