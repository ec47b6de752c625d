/**
 * GET /health: 200 when everything is up, 503 otherwise. Open to anyone; without a valid key
 * (when API_KEYS is set) it shows the seed's keys and `status` only: file paths, memory, queues
 * and versions are for callers with a key (or a loopback edge without API_KEYS).
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppEnv } from "../deps.ts";
import { checkHealth } from "../services/health.ts";
import { HealthResponse, PublicHealthResponse } from "./schemas.ts";

export const healthRoute = createRoute({
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Models, GPU node and database status (no API key needed; details need one)",
  responses: {
    200: {
      description: "All up",
      content: { "application/json": { schema: HealthResponse.or(PublicHealthResponse) } },
    },
    503: {
      description: "Something is down; the body says what",
      content: { "application/json": { schema: HealthResponse.or(PublicHealthResponse) } },
    },
  },
});

/** Whether the Authorization header carries one of the keys (compared against every key). */
export async function hasValidKey(header: string | undefined, keys: string[]): Promise<boolean> {
  const given = /^Bearer\s+(.+)$/i.exec(header ?? "")?.[1]?.trim();
  if (!given) return false;
  let ok = false;
  for (const key of keys) if (await timingSafeEqual(key, given)) ok = true;
  return ok;
}

export function registerHealth(
  app: OpenAPIHono<AppEnv>,
  info: {
    version: string;
    runtime: string;
    databaseKind: string;
    timeoutMs: number;
    apiKeys?: string[];
  },
): void {
  const keys = info.apiKeys ?? [];
  app.openapi(healthRoute, async (c) => {
    const full = HealthResponse.parse(await checkHealth({ ctx: c.var.ctx, input: info }));
    const status = full.status === "ok" ? 200 : 503;
    if (keys.length === 0 || (await hasValidKey(c.req.header("authorization"), keys))) {
      return c.json(full, status);
    }
    const { hermes_loaded, phi3_loaded, phi3_model_file_exists, device } = full;
    const seed = {
      status: full.status,
      hermes_loaded,
      phi3_loaded,
      phi3_model_file_exists,
      device,
    };
    return c.json(PublicHealthResponse.parse(seed), status);
  });
}
