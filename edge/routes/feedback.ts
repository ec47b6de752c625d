/** POST /feedback/phi3/ and GET /feedback/phi3/export. */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../deps.ts";
import { exportLines } from "../services/export.ts";
import { submitFeedback } from "../services/feedback.ts";
import { ndjsonResponse } from "./ndjson.ts";
import { ExportQuery, errorResponses, FeedbackRequest, FeedbackResponse } from "./schemas.ts";

export const feedbackRoute = createRoute({
  method: "post",
  path: "/feedback/phi3",
  tags: ["feedback"],
  summary: "Feedback on a Phi-3 proposal (a correction, a rating or a comment)",
  description:
    "A correction with a corrected_proposal becomes a worked example for later Phi-3 prompts.",
  request: {
    body: { content: { "application/json": { schema: FeedbackRequest } }, required: true },
  },
  responses: {
    200: {
      description: "Stored",
      content: { "application/json": { schema: FeedbackResponse } },
    },
    ...errorResponses(400, 401, 404, 413, 415, 422, 503),
  },
});

export const exportRoute = createRoute({
  method: "get",
  path: "/feedback/phi3/export",
  tags: ["feedback"],
  summary: "Stream the record as JSONL (the seed's two files)",
  request: { query: ExportQuery },
  responses: {
    200: {
      description: "One JSON object per line, oldest first",
      content: { "application/x-ndjson": { schema: z.string() } },
    },
    ...errorResponses(401, 422, 503),
  },
});

export function registerFeedback(app: OpenAPIHono<AppEnv>): void {
  app.openapi(feedbackRoute, async (c) => {
    const body = c.req.valid("json");
    const row = await submitFeedback({
      ctx: c.var.ctx,
      input: {
        transactionId: body.transaction_id,
        feedbackType: body.feedback_type,
        feedbackContent: body.feedback_content,
        timestamp: body.timestamp ? new Date(body.timestamp) : undefined,
        correctedProposal: body.corrected_proposal,
      },
    });
    return c.json(
      FeedbackResponse.parse({
        message: "Feedback received successfully",
        transaction_id: row.transactionId,
      }),
      200,
    );
  });

  app.openapi(exportRoute, async (c) => {
    const query = c.req.valid("query");
    const lines = exportLines(c.var.ctx.db, {
      kind: query.kind,
      since: query.since ? new Date(query.since) : undefined,
    });
    const filename = {
      log: "phi3_feedback_log.jsonl",
      feedback: "phi3_feedback_data.jsonl",
      generations: "generations.jsonl",
    }[query.kind];
    // zod-openapi types JSON and text bodies only; a stream has no typed form, hence the cast.
    return (await ndjsonResponse(c, lines, { filename, what: "export" })) as never;
  });
}
