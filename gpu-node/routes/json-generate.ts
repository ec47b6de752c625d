/**
 * POST /v1/hermes/json and /v1/phi3/json, and their streaming twins (`/stream`): a JSON value
 * valid against any JSON Schema of the structured-output subset (gpu-node/structured/), always
 * closed within max_tokens. The stream's text events are pieces of the JSON text (`raw`).
 *
 * A schema outside the subset is a 400 (invalid_schema / unsupported_schema) before the request
 * waits for a slot; a budget below the schema's minimum is a 422 budget_too_small from the
 * runtime before any token is generated.
 */
import type { Context } from "hono";
import { ServiceError } from "../contract/errors.ts";
import {
  GPU_ROUTES,
  JsonGenerateRequest,
  JsonGenerateResponse,
  MESSAGES,
} from "../contract/index.ts";
import type { ModelSlot } from "../lifecycle/registry.ts";
import type {
  GenerateControl,
  HermesRuntime,
  JsonGenerateInput,
  JsonResult,
  Phi3Runtime,
} from "../runtime.ts";
import { SchemaCompiler } from "../structured/index.ts";
import type { GpuNodeEnv, RegisterRoutes, RouteDeps } from "./context.ts";
import { type Generated, timings } from "./generation.ts";
import { registerGeneration } from "./generation-routes.ts";

type JsonRuntime = HermesRuntime | Phi3Runtime;

interface JsonModel<R extends JsonRuntime> {
  name: "hermes" | "phi3";
  path: string;
  streamPath: string;
  slot: (deps: RouteDeps) => ModelSlot<R>;
  notLoaded: string;
  /** Refusals of this model that depend on the body alone. */
  check?: (body: JsonGenerateRequest) => void;
  systemPrompt?: (deps: RouteDeps) => string;
}

function jsonResponse(
  c: Context<GpuNodeEnv>,
  deps: RouteDeps,
  model: string,
  { value, queueMs }: Generated<JsonResult>,
): JsonGenerateResponse {
  return {
    json: value.json,
    raw: value.raw,
    model,
    finish_reason: value.finishReason,
    usage: value.usage,
    timings: timings(c, deps, value.timings, queueMs),
  };
}

function registerJson<R extends JsonRuntime>(model: JsonModel<R>): RegisterRoutes {
  return (app, deps) => {
    // The subset check before the gate (its own small cache of schemas that passed).
    const schemas = new SchemaCompiler();
    registerGeneration(app, deps, {
      path: model.path,
      streamPath: model.streamPath,
      tag: model.name,
      summary: `JSON for any schema of the structured-output subset from ${model.name === "hermes" ? "Hermes" : "Phi-3"}`,
      answer: "The value (valid against json_schema), its raw JSON text, usage and timings",
      body: JsonGenerateRequest,
      response: JsonGenerateResponse,
      slot: model.slot,
      notLoaded: model.notLoaded,
      check: (body) => {
        // Refused schemas never wait for a slot (and their errors do not depend on the model).
        schemas.check(body.json_schema);
        model.check?.(body);
      },
      generate: (runtime, body, control: GenerateControl) => {
        if (!runtime.generateJson) {
          throw new ServiceError(
            "misconfigured",
            `The ${model.name} runtime has no structured output.`,
          );
        }
        const systemPrompt = model.systemPrompt?.(deps);
        const input: JsonGenerateInput = {
          ...(body.prompt !== undefined ? { prompt: body.prompt } : {}),
          ...(body.messages !== undefined ? { messages: body.messages } : {}),
          ...(systemPrompt !== undefined ? { systemPrompt } : {}),
          schema: body.json_schema,
          maxTokens: body.max_tokens,
          ...(body.sampling ? { sampling: body.sampling } : {}),
        };
        return runtime.generateJson(input, control);
      },
      textOf: (result) => result.raw,
      respond: (c, generated, runtime) => jsonResponse(c, deps, runtime.modelName, generated),
    });
  };
}

export const registerHermesJson: RegisterRoutes = registerJson<HermesRuntime>({
  name: "hermes",
  path: GPU_ROUTES.hermesJson,
  streamPath: GPU_ROUTES.hermesJsonStream,
  slot: ({ registry }) => registry.hermes,
  notLoaded: MESSAGES.hermesNotLoaded,
  systemPrompt: (deps) => deps.settings.hermes.systemPrompt,
});

export const registerPhi3Json: RegisterRoutes = registerJson<Phi3Runtime>({
  name: "phi3",
  path: GPU_ROUTES.phi3Json,
  streamPath: GPU_ROUTES.phi3JsonStream,
  slot: ({ registry }) => registry.phi3,
  notLoaded: MESSAGES.phi3NotLoaded,
  check: (body) => {
    if (body.prompt === undefined) {
      throw new ServiceError("invalid_request", "Phi-3 takes a prompt, not messages.", {
        issues: [{ path: "messages", code: "unsupported", message: "send prompt" }],
      });
    }
  },
});
