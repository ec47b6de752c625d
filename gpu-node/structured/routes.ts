/**
 * The GPU node's structured-output routes, `POST /v1/hermes/json` and `POST /v1/phi3/json`:
 * JsonGenerateRequest -> JsonGenerateResponse (contract/index.ts).
 *
 * Self-contained: the app hands in its request helpers (body parsing, readiness, the queue with
 * deadlines and aborts, timings) and this file adds the two routes. Errors are ServiceErrors
 * (statuses from contract/errors.ts): 400 invalid_schema / unsupported_schema before the
 * request is queued, 422 budget_too_small from the runtime before any token is generated.
 */
import type { Context, Env, Hono } from "hono";
import type { z } from "zod";
import { ServiceError } from "../contract/errors.ts";
import {
  GPU_ROUTES,
  JsonGenerateRequest,
  type JsonGenerateResponse,
  MESSAGES,
  type Timings,
} from "../contract/index.ts";
import type { WorkQueue } from "../queue.ts";
import type {
  GenerationTimings,
  HermesRuntime,
  JsonGenerateInput,
  Phi3Runtime,
} from "../runtime.ts";
import type { ModelRegistry, ModelSlot, RuntimeBase } from "../service/registry.ts";
import { SchemaCompiler } from "./index.ts";

export interface JsonRouteDeps<E extends Env> {
  registry: ModelRegistry;
  /** Hermes's system prompt when the request's messages have none (HERMES_SYSTEM_PROMPT). */
  hermesSystemPrompt: string;
  readBody<S extends z.ZodType>(c: Context<E>, schema: S): Promise<z.output<S>>;
  requireReady<R extends RuntimeBase>(
    slot: ModelSlot<R>,
    message: string,
  ): { runtime: R; queue: WorkQueue };
  runQueued<T>(
    c: Context<E>,
    queue: WorkQueue,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<{ value: T; queueMs: number }>;
  timings(c: Context<E>, runtime: GenerationTimings, queueMs: number): Timings;
  /** The subset check before queueing (default: a fresh compiler with its own cache). */
  schemas?: SchemaCompiler;
}

export function registerJsonRoutes<E extends Env>(app: Hono<E>, deps: JsonRouteDeps<E>): void {
  const schemas = deps.schemas ?? new SchemaCompiler();

  const handle = async (c: Context<E>, model: "hermes" | "phi3") => {
    const body = await deps.readBody(c, JsonGenerateRequest);
    // Refused schemas never wait in a queue (and their errors do not depend on the model).
    schemas.check(body.json_schema);
    if (model === "phi3" && body.prompt === undefined) {
      throw new ServiceError("invalid_request", "Phi-3 takes a prompt, not messages.", {
        issues: [{ path: "messages", code: "unsupported", message: "send prompt" }],
      });
    }
    const { runtime, queue }: { runtime: HermesRuntime | Phi3Runtime; queue: WorkQueue } =
      model === "hermes"
        ? deps.requireReady(deps.registry.hermes, MESSAGES.hermesNotLoaded)
        : deps.requireReady(deps.registry.phi3, MESSAGES.phi3NotLoaded);
    const generateJson = runtime.generateJson?.bind(runtime);
    if (!generateJson) {
      throw new ServiceError("misconfigured", `The ${model} runtime has no structured output.`);
    }
    const input: JsonGenerateInput = {
      ...(body.prompt !== undefined ? { prompt: body.prompt } : {}),
      ...(body.messages !== undefined ? { messages: body.messages } : {}),
      ...(model === "hermes" ? { systemPrompt: deps.hermesSystemPrompt } : {}),
      schema: body.json_schema,
      maxTokens: body.max_tokens,
      ...(body.sampling ? { sampling: body.sampling } : {}),
    };
    const { value, queueMs } = await deps.runQueued(c, queue, (signal) =>
      generateJson(input, signal),
    );
    const response: JsonGenerateResponse = {
      json: value.json,
      raw: value.raw,
      model: runtime.modelName,
      finish_reason: value.finishReason,
      usage: value.usage,
      timings: deps.timings(c, value.timings, queueMs),
    };
    return c.json(response);
  };

  app.post(GPU_ROUTES.hermesJson, (c) => handle(c, "hermes"));
  app.post(GPU_ROUTES.phi3Json, (c) => handle(c, "phi3"));
}
