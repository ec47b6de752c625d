/** The one typed Hono environment of the edge, and the dependencies the app is built from. */
import type { Context } from "hono";
import type { Database } from "../db/database.ts";
import type { GpuClient } from "./gpu-client.ts";
import type { EdgeMetrics } from "./metrics.ts";
import type { EdgeSettings } from "./settings.ts";

/** The part of pino the edge uses, so Workers can pass a console-backed logger. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface Clock {
  now(): Date;
}

/** Seed-compatible JSONL lines, appended after each commit (Node); a no-op on Workers. */
export interface RecordMirror {
  appendLog(line: Record<string, unknown>): void;
  appendFeedback(line: Record<string, unknown>): void;
}

/** Large static files the entry provides (Node reads node_modules; the Worker bundles them). */
export interface StaticAssets {
  /** @scalar/api-reference's standalone browser script, for /docs. */
  apiReferenceJs(): Promise<string | ArrayBuffer> | string | ArrayBuffer;
}

export interface AppDeps {
  settings: EdgeSettings;
  /** The database, or a per-request factory (Workers + Hyperdrive want a client per request). */
  db: Database | ((c: Context<AppEnv>) => Database);
  gpu: GpuClient;
  logger: Logger;
  clock: Clock;
  mirror: RecordMirror;
  version: string;
  /** "pglite" or "postgres", shown in /health. */
  databaseKind: string;
  /** Runtime name shown in /health ("node" or "workers"). */
  runtime: string;
  newId?: () => string;
  /** Absent: /docs renders, but its script answers 404. */
  assets?: StaticAssets;
  /** Prometheus metrics on Node (served on GET /metrics); absent on Workers. */
  metrics?: EdgeMetrics;
}

/** What every service function gets: fn({ ctx, input }). */
export interface ServiceContext {
  db: Database;
  gpu: GpuClient;
  logger: Logger;
  clock: Clock;
  mirror: RecordMirror;
  settings: EdgeSettings;
  requestId: string;
  /** Aborted when the client goes away or the request's time is up (made on first use). */
  signal: AbortSignal;
  /** Aborted when the client goes away (pass it with `deadline` to the GPU client: one timer). */
  clientSignal: AbortSignal;
  /** When the request's time is up (REQUEST_TIMEOUT_MS after it arrived), epoch ms. */
  deadline: number;
  newId: () => string;
  /** Absent where the runtime keeps no metrics (Workers). */
  metrics?: EdgeMetrics;
}

export type AppEnv = {
  Variables: {
    requestId: string;
    logger: Logger;
    ctx: ServiceContext;
  };
};

export const noopMirror: RecordMirror = {
  appendLog() {},
  appendFeedback() {},
};

export const systemClock: Clock = { now: () => new Date() };
