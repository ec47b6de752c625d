/**
 * POST /v1/hermes/generate and its streaming twin /v1/hermes/generate/stream: free text from
 * Hermes for one prompt or a conversation (`messages`), with optional stop sequences.
 */
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  GPU_ROUTES,
  HermesGenerateRequest,
  HermesGenerateResponse,
  MESSAGES,
} from "../contract/index.ts";
import { STREAM_CONTENT_TYPE, StreamEvent } from "../contract/stream.ts";
import type { HermesGenerateInput, HermesResult } from "../runtime.ts";
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

export const hermesGenerateRoute = createRoute({
  method: "post",
  path: GPU_ROUTES.hermesGenerate,
  tags: ["hermes"],
  summary: "Free text from Hermes (a prompt or a conversation)",
  request: { body: jsonBody(HermesGenerateRequest), headers: GenerationHeaders },
  responses: {
    200: {
      description: "The generated text",
      content: { "application/json": { schema: HermesGenerateResponse } },
    },
    ...errorResponses(...ERRORS),
  },
});

export const hermesGenerateStreamRoute = createRoute({
  method: "post",
  path: GPU_ROUTES.hermesGenerateStream,
  tags: ["hermes"],
  summary: "The same, streamed: NDJSON text events, then done (or error)",
  request: { body: jsonBody(HermesGenerateRequest), headers: GenerationHeaders },
  responses: {
    200: {
      description: "One StreamEvent per line",
      content: { [STREAM_CONTENT_TYPE]: { schema: StreamEvent } },
    },
    ...errorResponses(...ERRORS),
    ...CLIENT_GONE,
  },
});

/** The answer of Hermes' routes (generate and critique). */
export function hermesResponse(
  c: Context<GpuNodeEnv>,
  deps: RouteDeps,
  model: string,
  { value, queueMs }: Generated<HermesResult>,
): HermesGenerateResponse {
  return {
    text: value.text,
    model,
    finish_reason: value.finishReason,
    usage: value.usage,
    timings: timings(c, deps, value.timings, queueMs),
  };
}

export const registerHermesGenerate: RegisterRoutes = (app, deps) => {
  const input = (body: HermesGenerateRequest): HermesGenerateInput => ({
    ...(body.prompt !== undefined ? { prompt: body.prompt } : {}),
    ...(body.messages !== undefined ? { messages: body.messages } : {}),
    systemPrompt: body.system_prompt ?? deps.settings.hermes.systemPrompt,
    maxTokens: body.max_tokens,
    ...(body.stop ? { stop: body.stop } : {}),
    ...(body.sampling ? { sampling: body.sampling } : {}),
  });

  app.openapi(hermesGenerateRoute, async (c) => {
    const body = c.req.valid("json");
    const { runtime, gate } = readyModel(deps.registry.hermes, MESSAGES.hermesNotLoaded);
    const generated = await runGeneration(c, deps, gate, (control) =>
      runtime.generate(input(body), control),
    );
    return c.json(hermesResponse(c, deps, runtime.modelName, generated), 200);
  });

  app.openapi(hermesGenerateStreamRoute, async (c) => {
    const body = c.req.valid("json");
    const { runtime, gate } = readyModel(deps.registry.hermes, MESSAGES.hermesNotLoaded);
    return streamGeneration(c, deps, gate, {
      work: (control) => runtime.generate(input(body), control),
      textOf: (result) => result.text,
      respond: (generated) => hermesResponse(c, deps, runtime.modelName, generated),
    });
  });
};
