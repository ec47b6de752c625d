/**
 * POST /v1/hermes/critique and /v1/hermes/critique/stream: Hermes assesses a Phi-3 proposal
 * with the seed's critique prompt and up to twice the caller's budget.
 */
import { createRoute } from "@hono/zod-openapi";
import {
  critiquePrompt,
  GPU_ROUTES,
  HermesCritiqueRequest,
  HermesGenerateResponse,
  MESSAGES,
} from "../contract/index.ts";
import { STREAM_CONTENT_TYPE, StreamEvent } from "../contract/stream.ts";
import type { HermesGenerateInput } from "../runtime.ts";
import type { RegisterRoutes } from "./context.ts";
import { CLIENT_GONE, errorResponses } from "./errors.ts";
import {
  GenerationHeaders,
  jsonBody,
  readyModel,
  runGeneration,
  streamGeneration,
} from "./generation.ts";
import { hermesResponse } from "./hermes-generate.ts";

const ERRORS = [400, 401, 413, 415, 422, 429, 503, 504] as const;

export const hermesCritiqueRoute = createRoute({
  method: "post",
  path: GPU_ROUTES.hermesCritique,
  tags: ["hermes"],
  summary: "Hermes' critique of a trade proposal",
  request: { body: jsonBody(HermesCritiqueRequest), headers: GenerationHeaders },
  responses: {
    200: {
      description: "The critique",
      content: { "application/json": { schema: HermesGenerateResponse } },
    },
    ...errorResponses(...ERRORS),
  },
});

export const hermesCritiqueStreamRoute = createRoute({
  method: "post",
  path: GPU_ROUTES.hermesCritiqueStream,
  tags: ["hermes"],
  summary: "The same, streamed: NDJSON text events, then done (or error)",
  request: { body: jsonBody(HermesCritiqueRequest), headers: GenerationHeaders },
  responses: {
    200: {
      description: "One StreamEvent per line",
      content: { [STREAM_CONTENT_TYPE]: { schema: StreamEvent } },
    },
    ...errorResponses(...ERRORS),
    ...CLIENT_GONE,
  },
});

export const registerHermesCritique: RegisterRoutes = (app, deps) => {
  const input = (body: HermesCritiqueRequest): HermesGenerateInput => ({
    prompt: critiquePrompt(body.proposal),
    systemPrompt: deps.settings.hermes.systemPrompt,
    // The seed gave the critique twice the caller's budget; where the context cannot hold that,
    // the caller's own budget is enough.
    maxTokens: 2 * body.max_length,
    minTokens: body.max_length,
    ...(body.sampling ? { sampling: body.sampling } : {}),
  });

  app.openapi(hermesCritiqueRoute, async (c) => {
    const body = c.req.valid("json");
    const { runtime, gate } = readyModel(deps.registry.hermes, MESSAGES.hermesNotLoaded);
    const generated = await runGeneration(c, deps, gate, (control) =>
      runtime.generate(input(body), control),
    );
    return c.json(hermesResponse(c, deps, runtime.modelName, generated), 200);
  });

  app.openapi(hermesCritiqueStreamRoute, async (c) => {
    const body = c.req.valid("json");
    const { runtime, gate } = readyModel(deps.registry.hermes, MESSAGES.hermesNotLoaded);
    return streamGeneration(c, deps, gate, {
      work: (control) => runtime.generate(input(body), control),
      textOf: (result) => result.text,
      respond: (generated) => hermesResponse(c, deps, runtime.modelName, generated),
    });
  });
};
