/** GET /feedback/phi3/datasets: the corrections as SFT or DPO fine-tuning data (NDJSON). */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../deps.ts";
import { exportDataset } from "../services/export-dataset.ts";
import { ndjsonResponse } from "./ndjson.ts";
import { errorResponses } from "./schemas.ts";

export const DatasetQuery = z.object({
  format: z.enum(["sft", "dpo"]).openapi({
    description:
      "sft: {messages: [user prompt, assistant corrected proposal as JSON]} (OpenAI chat " +
      "fine-tuning); dpo: {prompt, chosen: corrected, rejected: original}, for corrections that " +
      "differ. The latest correction per proposal wins.",
  }),
  since: z.iso
    .datetime({ offset: true, message: "since must be an ISO-8601 date-time" })
    .optional()
    .openapi({ description: "Only corrections received at or after this time." }),
});

export const datasetRoute = createRoute({
  method: "get",
  path: "/feedback/phi3/datasets",
  tags: ["feedback"],
  summary: "Stream fine-tuning datasets built from the corrections (NDJSON)",
  request: { query: DatasetQuery },
  responses: {
    200: {
      description: "One JSON object per line",
      content: { "application/x-ndjson": { schema: z.string() } },
    },
    ...errorResponses(401, 422, 503),
  },
});

export function registerDatasets(app: OpenAPIHono<AppEnv>): void {
  app.openapi(datasetRoute, async (c) => {
    const query = c.req.valid("query");
    const lines = exportDataset({
      ctx: c.var.ctx,
      input: { format: query.format, since: query.since ? new Date(query.since) : undefined },
    });
    // zod-openapi types JSON and text bodies only; a stream has no typed form, hence the cast.
    return (await ndjsonResponse(c, lines, {
      filename: `phi3_${query.format}.jsonl`,
      what: "dataset export",
    })) as never;
  });
}
