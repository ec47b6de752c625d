/**
 * POST /v1/phi3/generate and /v1/phi3/generate/stream: a trade proposal that always satisfies
 * the schema. The stream's text events are pieces of the JSON text (`raw`).
 */
import {
  GPU_ROUTES,
  MESSAGES,
  Phi3GenerateRequest,
  Phi3GenerateResponse,
} from "../contract/index.ts";
import type { RegisterRoutes } from "./context.ts";
import { timings } from "./generation.ts";
import { registerGeneration } from "./generation-routes.ts";

export const registerPhi3Generate: RegisterRoutes = (app, deps) =>
  registerGeneration(app, deps, {
    path: GPU_ROUTES.phi3Generate,
    streamPath: GPU_ROUTES.phi3GenerateStream,
    tag: "phi3",
    summary: "A trade proposal from Phi-3 (schema-constrained JSON)",
    answer: "The proposal, its raw JSON text, usage and timings",
    body: Phi3GenerateRequest,
    response: Phi3GenerateResponse,
    slot: ({ registry }) => registry.phi3,
    notLoaded: MESSAGES.phi3NotLoaded,
    generate: (runtime, body, control) =>
      runtime.generate(
        {
          prompt: body.prompt,
          maxTokens: body.max_tokens,
          ...(body.sampling ? { sampling: body.sampling } : {}),
        },
        control,
      ),
    textOf: (result) => result.raw,
    respond: (c, { value, queueMs }, runtime): Phi3GenerateResponse => ({
      proposal: value.proposal,
      raw: value.raw,
      model: runtime.modelName,
      finish_reason: value.finishReason,
      usage: value.usage,
      timings: timings(c, deps, value.timings, queueMs),
    }),
  });
