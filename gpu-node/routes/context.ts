/**
 * What every route of the GPU node shares: the Hono environment (per-request variables) and the
 * app's dependencies, handed to each route file's register function.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Logger } from "pino";
import type { GpuNodeHealth } from "../contract/index.ts";
import type { Lifecycle } from "../lifecycle/lifecycle.ts";
import type { ModelRegistry } from "../lifecycle/registry.ts";
import type { GpuNodeSettings } from "../settings.ts";

export type GpuNodeEnv = {
  Variables: { requestId: string; log: Logger; startedAt: number };
};

export type GpuNodeOpenApi = OpenAPIHono<GpuNodeEnv>;

export type AppSettings = Pick<GpuNodeSettings, "token" | "maxRequestMs"> & {
  hermes: Pick<GpuNodeSettings["hermes"], "systemPrompt">;
};

/** Dependencies of the routes (createGpuNodeApp fills in the defaults). */
export interface RouteDeps {
  settings: AppSettings;
  logger: Logger;
  registry: ModelRegistry;
  lifecycle: Lifecycle;
  version: string;
  /** Milliseconds, monotonic. */
  now: () => number;
  /** Resident set size, bytes. */
  rssBytes: () => number;
  /** now() when the app was made (uptime). */
  bootedAt: number;
  /** The start-up VRAM plan (vram-plan.ts), reported by /v1/health as `vram_plan`. */
  vramPlan?: GpuNodeHealth["vram_plan"];
}

/** A route file's entry: adds its operations to the app. */
export type RegisterRoutes = (app: GpuNodeOpenApi, deps: RouteDeps) => void;

export const round = (ms: number) => Math.round(ms * 10) / 10;
