/**
 * POST /v1/hermes/critique and /v1/hermes/critique/stream: Hermes assesses a Phi-3 proposal
 * with the seed's critique prompt and up to twice the caller's budget.
 */
import {
  GPU_ROUTES,
  HermesCritiqueRequest,
  HermesGenerateResponse,
  MESSAGES,
} from "../contract/index.ts";
import { critiquePrompt } from "../hermes/critique-prompt.ts";
import type { RegisterRoutes } from "./context.ts";
import { registerGeneration } from "./generation-routes.ts";
import { hermesResponse } from "./hermes-generate.ts";

export const registerHermesCritique: RegisterRoutes = (app, deps) =>
  registerGeneration(app, deps, {
    path: GPU_ROUTES.hermesCritique,
    streamPath: GPU_ROUTES.hermesCritiqueStream,
    tag: "hermes",
    summary: "Hermes' critique of a trade proposal",
    answer: "The critique",
    body: HermesCritiqueRequest,
    response: HermesGenerateResponse,
    slot: ({ registry }) => registry.hermes,
    notLoaded: MESSAGES.hermesNotLoaded,
    generate: (runtime, body, control) =>
      runtime.generate(
        {
          prompt: critiquePrompt(body.proposal),
          systemPrompt: deps.settings.hermes.systemPrompt,
          // The seed gave the critique twice the caller's budget; where the context cannot hold
          // that, the caller's own budget is enough.
          maxTokens: 2 * body.max_length,
          minTokens: body.max_length,
          ...(body.sampling ? { sampling: body.sampling } : {}),
        },
        control,
      ),
    textOf: (result) => result.text,
    respond: (c, generated, runtime) => hermesResponse(c, deps, runtime.modelName, generated),
  });
