/** POST /propose_trade_adjustments/: a Phi-3 proposal critiqued by Hermes, recorded. */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../deps.ts";
import { proposeTradeAdjustments } from "../services/phi3.ts";
import { errorResponses, ModelGenerateRequest, ProposeResponse } from "./schemas.ts";

export const proposeRoute = createRoute({
  method: "post",
  path: "/propose_trade_adjustments",
  tags: ["propose"],
  summary: "Phi-3 proposes a trade adjustment, Hermes assesses it",
  description:
    "The proposal is recorded before the answer. If Hermes fails after Phi-3 succeeded, the " +
    "error body carries transaction_id and phi3_proposal: the proposal is kept.",
  request: {
    body: { content: { "application/json": { schema: ModelGenerateRequest } }, required: true },
  },
  responses: {
    200: {
      description: "Proposal and assessment",
      content: { "application/json": { schema: ProposeResponse } },
    },
    ...errorResponses(400, 401, 413, 415, 422, 429, 503, 504),
  },
});

export function registerPropose(app: OpenAPIHono<AppEnv>): void {
  app.openapi(proposeRoute, async (c) => {
    const body = c.req.valid("json");
    const result = await proposeTradeAdjustments({
      ctx: c.var.ctx,
      input: { prompt: body.prompt, maxLength: body.max_length },
    });
    c.header("X-Transaction-Id", result.transactionId);
    return c.json(
      ProposeResponse.parse({
        transaction_id: result.transactionId,
        phi3_proposal: result.proposal,
        hermes_assessment: result.assessment,
      }),
      200,
    );
  });
}
