/** The one typed Hono environment of the edge, and the dependencies the app is built from. */
import type { Context } from "hono";
import type { Database } from "../db/database.ts";
import type { GpuClient } from "./gpu-client.ts";
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
  /** Aborted when the client goes away or the request's time is up. */
  signal: AbortSignal;
  newId: () => string;
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
