/**
 * POST /v1/phi3/generate and /v1/phi3/generate/stream: a trade proposal that always satisfies
 * the schema. The stream's text events are pieces of the JSON text (`raw`).
 */
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  GPU_ROUTES,
  MESSAGES,
  Phi3GenerateRequest,
  Phi3GenerateResponse,
} from "../contract/index.ts";
import { STREAM_CONTENT_TYPE, StreamEvent } from "../contract/stream.ts";
import type { Phi3GenerateInput, Phi3Result } from "../runtime.ts";
import type { GpuNodeEnv, RegisterRoutes, RouteDeps } from "./context.ts";
import { CLIENT_GONE, errorResponses } from "./errors.ts";
import {
  type Generated,
  GenerationHeaders,
  jsonBody,
  readyModel,
  runGeneration,
  streamGeneration,
  timings,
} from "./generation.ts";

const ERRORS = [400, 401, 413, 415, 422, 429, 503, 504] as const;

export const phi3GenerateRoute = createRoute({
  method: "post",
  path: GPU_ROUTES.phi3Generate,
  tags: ["phi3"],
  summary: "A trade proposal from Phi-3 (schema-constrained JSON)",
  request: { body: jsonBody(Phi3GenerateRequest), headers: GenerationHeaders },
  responses: {
    200: {
      description: "The proposal, its raw JSON text, usage and timings",
      content: { "application/json": { schema: Phi3GenerateResponse } },
    },
    ...errorResponses(...ERRORS),
  },
});

export const phi3GenerateStreamRoute = createRoute({
  method: "post",
  path: GPU_ROUTES.phi3GenerateStream,
  tags: ["phi3"],
  summary: "The same, streamed: NDJSON text events (pieces of the JSON), then done (or error)",
  request: { body: jsonBody(Phi3GenerateRequest), headers: GenerationHeaders },
  responses: {
    200: {
      description: "One StreamEvent per line",
      content: { [STREAM_CONTENT_TYPE]: { schema: StreamEvent } },
    },
    ...errorResponses(...ERRORS),
    ...CLIENT_GONE,
  },
});

function phi3Response(
  c: Context<GpuNodeEnv>,
  deps: RouteDeps,
  model: string,
  { value, queueMs }: Generated<Phi3Result>,
): Phi3GenerateResponse {
  return {
    proposal: value.proposal,
    raw: value.raw,
    model,
    finish_reason: value.finishReason,
    usage: value.usage,
    timings: timings(c, deps, value.timings, queueMs),
  };
}

export const registerPhi3Generate: RegisterRoutes = (app, deps) => {
  const input = (body: Phi3GenerateRequest): Phi3GenerateInput => ({
    prompt: body.prompt,
    maxTokens: body.max_tokens,
    ...(body.sampling ? { sampling: body.sampling } : {}),
  });

  app.openapi(phi3GenerateRoute, async (c) => {
    const body = c.req.valid("json");
    const { runtime, gate } = readyModel(deps.registry.phi3, MESSAGES.phi3NotLoaded);
    const generated = await runGeneration(c, deps, gate, (control) =>
      runtime.generate(input(body), control),
    );
    return c.json(phi3Response(c, deps, runtime.modelName, generated), 200);
  });

  app.openapi(phi3GenerateStreamRoute, async (c) => {
    const body = c.req.valid("json");
    const { runtime, gate } = readyModel(deps.registry.phi3, MESSAGES.phi3NotLoaded);
    return streamGeneration(c, deps, gate, {
      work: (control) => runtime.generate(input(body), control),
      textOf: (result) => result.raw,
      respond: (generated) => phi3Response(c, deps, runtime.modelName, generated),
    });
  });
};
