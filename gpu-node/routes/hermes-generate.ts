/**
 * POST /v1/hermes/generate and its streaming twin /v1/hermes/generate/stream: free text from
 * Hermes for one prompt or a conversation (`messages`), with optional stop sequences.
 */
import type { Context } from "hono";
import {
  GPU_ROUTES,
  HermesGenerateRequest,
  HermesGenerateResponse,
  MESSAGES,
} from "../contract/index.ts";
import type { HermesResult } from "../runtime.ts";
import type { GpuNodeEnv, RegisterRoutes, RouteDeps } from "./context.ts";
import type { Generated } from "./generation.ts";
import { timings } from "./generation.ts";
import { registerGeneration } from "./generation-routes.ts";

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

export const registerHermesGenerate: RegisterRoutes = (app, deps) =>
  registerGeneration(app, deps, {
    path: GPU_ROUTES.hermesGenerate,
    streamPath: GPU_ROUTES.hermesGenerateStream,
    tag: "hermes",
    summary: "Free text from Hermes (a prompt or a conversation)",
    answer: "The generated text",
    body: HermesGenerateRequest,
    response: HermesGenerateResponse,
    slot: ({ registry }) => registry.hermes,
    notLoaded: MESSAGES.hermesNotLoaded,
    generate: (runtime, body, control) =>
      runtime.generate(
        {
          ...(body.prompt !== undefined ? { prompt: body.prompt } : {}),
          ...(body.messages !== undefined ? { messages: body.messages } : {}),
          systemPrompt: body.system_prompt ?? deps.settings.hermes.systemPrompt,
          maxTokens: body.max_tokens,
          ...(body.stop ? { stop: body.stop } : {}),
          ...(body.sampling ? { sampling: body.sampling } : {}),
        },
        control,
      ),
    textOf: (result) => result.text,
    respond: (c, generated, runtime) => hermesResponse(c, deps, runtime.modelName, generated),
  });
