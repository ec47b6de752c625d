/** POST /generate/ (unified), /generate/hermes/, /generate/phi3/. */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { MESSAGES } from "../../gpu-node/contract/index.ts";
import type { AppEnv } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { generateHermesText } from "../services/hermes.ts";
import { generateProposal } from "../services/phi3.ts";
import {
  errorResponses,
  GenerateRequest,
  HermesResponse,
  ModelGenerateRequest,
  TradeProposalSchema,
} from "./schemas.ts";

const COMMON_ERRORS = [400, 401, 413, 415, 422, 429, 503, 504] as const;

const json = <T>(schema: T) => ({ content: { "application/json": { schema } }, required: true });

const transactionHeader = {
  "X-Transaction-Id": {
    description: "Id of the recorded proposal; use it to send feedback.",
    schema: { type: "string" as const, format: "uuid" },
  },
};

export const generateRoute = createRoute({
  method: "post",
  path: "/generate",
  tags: ["generate"],
  summary: "Generate with Hermes (default) or Phi-3",
  description:
    'model_id "hermes" returns {generated_text}; "phi3" returns a trade proposal object that ' +
    "always satisfies the schema, with its X-Transaction-Id header.",
  request: { body: json(GenerateRequest) },
  responses: {
    200: {
      description: "Hermes text or a Phi-3 trade proposal",
      headers: transactionHeader,
      content: {
        "application/json": { schema: HermesResponse.or(TradeProposalSchema) },
      },
    },
    ...errorResponses(...COMMON_ERRORS),
  },
});

export const hermesRoute = createRoute({
  method: "post",
  path: "/generate/hermes",
  tags: ["generate"],
  summary: "Free text from Hermes-3",
  request: { body: json(ModelGenerateRequest) },
  responses: {
    200: {
      description: "Generated text",
      content: { "application/json": { schema: HermesResponse } },
    },
    ...errorResponses(...COMMON_ERRORS),
  },
});

export const phi3Route = createRoute({
  method: "post",
  path: "/generate/phi3",
  tags: ["generate"],
  summary: "A trade proposal from Phi-3 (schema-constrained JSON)",
  request: { body: json(ModelGenerateRequest) },
  responses: {
    200: {
      description: "The proposal object, exactly the schema",
      headers: transactionHeader,
      content: { "application/json": { schema: TradeProposalSchema } },
    },
    ...errorResponses(...COMMON_ERRORS),
  },
});

async function hermes(c: Context<AppEnv>, prompt: string, maxLength: number) {
  const text = await generateHermesText({ ctx: c.var.ctx, input: { prompt, maxLength } });
  return c.json(HermesResponse.parse({ generated_text: text }), 200);
}

async function phi3(
  c: Context<AppEnv>,
  prompt: string,
  maxLength: number,
  endpoint: "generate" | "generate_phi3",
) {
  const recorded = await generateProposal({
    ctx: c.var.ctx,
    input: { prompt, maxLength, endpoint },
  });
  c.header("X-Transaction-Id", recorded.transactionId);
  return c.json(TradeProposalSchema.parse(recorded.proposal), 200);
}

export function registerGenerate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(generateRoute, async (c) => {
    const body = c.req.valid("json");
    const modelId = body.model_id ?? "hermes";
    if (modelId === "hermes") return hermes(c, body.prompt, body.max_length);
    if (modelId === "phi3") return phi3(c, body.prompt, body.max_length, "generate");
    throw new ApiError("invalid_model_id", MESSAGES.invalidModelId, {
      specified_model_id: body.model_id,
    });
  });
  app.openapi(hermesRoute, (c) => {
    const body = c.req.valid("json");
    return hermes(c, body.prompt, body.max_length);
  });
  app.openapi(phi3Route, (c) => {
    const body = c.req.valid("json");
    return phi3(c, body.prompt, body.max_length, "generate_phi3");
  });
}
