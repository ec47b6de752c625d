/** GET /v1/models (OpenAI's model list). */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../deps.ts";
import { listModels } from "../../services/openai/models.ts";
import { ModelList, openAiErrorResponses } from "../../services/openai/wire.ts";

export const listModelsRoute = createRoute({
  method: "get",
  path: "/v1/models",
  tags: ["openai"],
  summary: "The models (OpenAI-compatible)",
  description:
    "Both models, always, with the GPU node's state for each (`ready` is true when it can answer " +
    'now; "unreachable" when the node did not answer).',
  responses: {
    200: { description: "The model list", content: { "application/json": { schema: ModelList } } },
    ...openAiErrorResponses(401),
  },
});

export function registerListModels(app: OpenAPIHono<AppEnv>): void {
  app.openapi(listModelsRoute, async (c) => c.json(await listModels({ ctx: c.var.ctx }), 200));
}
