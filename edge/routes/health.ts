/** GET /health: 200 when everything is up, 503 otherwise, the same body either way. */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../deps.ts";
import { checkHealth } from "../services/health.ts";
import { HealthResponse } from "./schemas.ts";

export const healthRoute = createRoute({
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Models, GPU node and database status (no API key needed)",
  responses: {
    200: { description: "All up", content: { "application/json": { schema: HealthResponse } } },
    503: {
      description: "Something is down; the body says what",
      content: { "application/json": { schema: HealthResponse } },
    },
  },
});

export function registerHealth(
  app: OpenAPIHono<AppEnv>,
  info: { version: string; runtime: string; databaseKind: string; timeoutMs: number },
): void {
  app.openapi(healthRoute, async (c) => {
    const body = HealthResponse.parse(await checkHealth({ ctx: c.var.ctx, input: info }));
    return body.status === "ok" ? c.json(body, 200) : c.json(body, 503);
  });
}
