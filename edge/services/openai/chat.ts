/**
 * POST /v1/chat/completions: one plan (plan.ts), answered whole or streamed.
 *
 * - text (Hermes): the conversation to GPU_ROUTES.hermesGenerate(/stream), recorded in generations.
 * - json (either model, any schema of the subset): GPU_ROUTES.hermesJson / phi3Json (/stream),
 *   recorded in generations. The node refuses schemas outside the subset (400) and budgets too
 *   small for any valid value (422 budget_too_small); those pass through.
 * - proposal (Phi-3, the trade schema): the last user message is the prompt, augmented with past
 *   corrections, generated on GPU_ROUTES.phi3Generate(/stream) and recorded as a proposal whose
 *   transaction id is the completion's id (chatcmpl-<transaction_id>), so /feedback/phi3/ works.
 *
 * Streamed, the node's pieces go out as chat.completion.chunk events as they arrive (a pull-based
 * ReadableStream: nothing is buffered); the record is committed before the final chunk and
 * `data: [DONE]`. A failure after the first byte is an OpenAI error event (no [DONE]). The client
 * going away cancels the node's stream, which stops its sequence.
 */
import type {
  HermesGenerateRequest,
  HermesGenerateResponse,
  JsonGenerateRequest,
  JsonGenerateResponse,
  Phi3GenerateRequest,
  Phi3GenerateResponse,
} from "../../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../../deps.ts";
import { ApiError, openAiErrorBody } from "../../errors.ts";
import type { GpuEventStream } from "../../gpu-stream.ts";
import { type Augmentation, augmentPrompt } from "../augment.ts";
import type { ChatPlan } from "./plan.ts";
import { recordGeneration, recordProposal, round2 } from "./record.ts";
import type { ChatCompletion, ChatCompletionChunk, CompletionUsage } from "./wire.ts";

type NodeAnswer = HermesGenerateResponse | JsonGenerateResponse | Phi3GenerateResponse;

interface Prepared {
  /** The uuid behind chatcmpl-<id>: the proposal's transaction id, or the generation's id. */
  id: string;
  created: number;
  started: number;
  augmentation?: Augmentation;
  augmentMs: number;
}

export interface ChatAnswer {
  completion: ChatCompletion;
  /** Set for a recorded trade proposal. */
  transactionId?: string;
}

export interface ChatStream {
  id: string;
  transactionId?: string;
  /** text/event-stream bytes. */
  body: ReadableStream<Uint8Array>;
}

const completionId = (id: string) => `chatcmpl-${id}`;

async function prepare(ctx: ServiceContext, plan: ChatPlan): Promise<Prepared> {
  const started = performance.now();
  const prepared: Prepared = {
    id: ctx.newId(),
    created: Math.floor(ctx.clock.now().getTime() / 1000),
    started,
    augmentMs: 0,
  };
  if (plan.mode.kind === "proposal") {
    prepared.augmentation = await augmentPrompt(ctx, plan.mode.prompt).catch((err: unknown) => {
      throw new ApiError(
        "database_unavailable",
        "Could not read past corrections for prompt augmentation.",
        {},
        { cause: err },
      );
    });
    prepared.augmentMs = round2(performance.now() - started);
  }
  return prepared;
}

type NodeRequest =
  | { kind: "text"; body: HermesGenerateRequest }
  | { kind: "json"; body: JsonGenerateRequest }
  | { kind: "proposal"; body: Phi3GenerateRequest };

/** The request body for the node, by mode (the same for the streaming twin). */
function nodeRequest(plan: ChatPlan, prepared: Prepared): NodeRequest {
  const { messages, maxTokens: max_tokens, sampling, stop } = plan;
  const opt = { ...(sampling ? { sampling } : {}) };
  switch (plan.mode.kind) {
    case "text":
      return { kind: "text", body: { messages, max_tokens, ...(stop ? { stop } : {}), ...opt } };
    case "json":
      return {
        kind: "json",
        body: {
          // Phi-3's JSON route takes a prompt, not messages (the GPU node answers 422).
          ...(plan.mode.prompt !== undefined ? { prompt: plan.mode.prompt } : { messages }),
          json_schema: plan.mode.schema,
          max_tokens,
          ...opt,
        },
      };
    case "proposal":
      return {
        kind: "proposal",
        body: { prompt: prepared.augmentation?.prompt ?? plan.mode.prompt, max_tokens, ...opt },
      };
  }
}

/** The answer's text: Hermes' text, or the exact JSON the model wrote. */
const outputOf = (answer: NodeAnswer) => ("text" in answer ? answer.text : answer.raw);

const usageOf = (answer: NodeAnswer): CompletionUsage => ({
  prompt_tokens: answer.usage.prompt_tokens,
  completion_tokens: answer.usage.completion_tokens,
  total_tokens: answer.usage.prompt_tokens + answer.usage.completion_tokens,
});

/** Commits the record of a finished answer; returns the transaction id of a proposal. */
async function record(
  ctx: ServiceContext,
  plan: ChatPlan,
  prepared: Prepared,
  answer: NodeAnswer,
): Promise<string | undefined> {
  if (plan.mode.kind === "proposal") {
    const phi3 = answer as Phi3GenerateResponse;
    const row = await recordProposal({
      ctx,
      input: {
        transactionId: prepared.id,
        plan,
        prompt: plan.mode.prompt,
        augmentation: prepared.augmentation ?? { prompt: plan.mode.prompt, examples: [] },
        answer: phi3,
        timings: {
          augment_ms: prepared.augmentMs,
          phi3_ms: round2(performance.now() - prepared.started - prepared.augmentMs),
        },
      },
    });
    return row.transactionId;
  }
  await recordGeneration({
    ctx,
    input: {
      id: prepared.id,
      plan,
      answer,
      output: outputOf(answer),
      edgeTotalMs: performance.now() - prepared.started,
    },
  });
  return undefined;
}

export async function createChatCompletion({
  ctx,
  input: plan,
}: {
  ctx: ServiceContext;
  input: ChatPlan;
}): Promise<ChatAnswer> {
  const prepared = await prepare(ctx, plan);
  const call = { signal: ctx.signal, requestId: ctx.requestId };
  const req = nodeRequest(plan, prepared);
  let answer: NodeAnswer;
  if (req.kind === "text") answer = await ctx.gpu.hermesGenerate(req.body, call);
  else if (req.kind === "json") answer = await ctx.gpu.jsonGenerate(plan.model, req.body, call);
  else answer = await ctx.gpu.phi3Generate(req.body, call);
  const transactionId = await record(ctx, plan, prepared, answer);
  return {
    transactionId,
    completion: {
      id: completionId(prepared.id),
      object: "chat.completion",
      created: prepared.created,
      model: plan.model,
      system_fingerprint: answer.model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: outputOf(answer), refusal: null },
          logprobs: null,
          finish_reason: answer.finish_reason,
        },
      ],
      usage: usageOf(answer),
    },
  };
}

async function openNodeStream(
  ctx: ServiceContext,
  plan: ChatPlan,
  prepared: Prepared,
  idleMs: number,
): Promise<GpuEventStream<NodeAnswer>> {
  const call = { signal: ctx.signal, requestId: ctx.requestId, timeoutMs: idleMs };
  const req = nodeRequest(plan, prepared);
  if (req.kind === "text") return ctx.gpu.hermesGenerateStream(req.body, call);
  if (req.kind === "json") return ctx.gpu.jsonGenerateStream(plan.model, req.body, call);
  return ctx.gpu.phi3GenerateStream(req.body, call);
}

const encoder = new TextEncoder();
const sse = (data: unknown) =>
  encoder.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);

/**
 * Opens the node's stream (its refusals are thrown here, before any byte is sent) and returns
 * the SSE body. `ctx.signal` must be the client's connection only: REQUEST_TIMEOUT_MS bounds the
 * wait for the first piece and each gap after it, not the answer's total.
 */
export async function streamChatCompletion({
  ctx,
  input: plan,
}: {
  ctx: ServiceContext;
  input: ChatPlan;
}): Promise<ChatStream> {
  const prepared = await prepare(ctx, plan);
  const upstream = await openNodeStream(ctx, plan, prepared, ctx.settings.REQUEST_TIMEOUT_MS);
  const events = upstream[Symbol.asyncIterator]();
  const id = completionId(prepared.id);
  const chunk = (
    delta: ChatCompletionChunk["choices"][number]["delta"],
    finish: "stop" | "length" | null = null,
  ): ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created: prepared.created,
    model: plan.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(plan.includeUsage ? { usage: null } : {}),
  });
  let finished = false;

  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(sse(chunk({ role: "assistant", content: "" })));
    },
    // One node event per pull: the client's reading paces the node's stream.
    async pull(controller) {
      try {
        for (;;) {
          const next = await events.next();
          if (next.done) throw new ApiError("request_aborted", "The stream was cancelled.");
          const event = next.value;
          if (event.type === "text") {
            if (event.text === "") continue;
            controller.enqueue(sse(chunk({ content: event.text })));
            return;
          }
          const answer = event.response;
          await record(ctx, plan, prepared, answer);
          controller.enqueue(sse(chunk({}, answer.finish_reason)));
          if (plan.includeUsage) {
            controller.enqueue(
              sse({
                id,
                object: "chat.completion.chunk",
                created: prepared.created,
                model: plan.model,
                system_fingerprint: answer.model,
                choices: [],
                usage: usageOf(answer),
              }),
            );
          }
          controller.enqueue(sse("[DONE]"));
          finished = true;
          controller.close();
          return;
        }
      } catch (err) {
        upstream.cancel();
        if (ctx.signal.aborted) {
          ctx.logger.info({ request_id: ctx.requestId }, "client went away mid-stream");
          controller.close();
          return;
        }
        const failure =
          err instanceof ApiError ? err : new ApiError("internal_error", "Internal server error.");
        if (!(err instanceof ApiError)) {
          ctx.logger.error({ err, request_id: ctx.requestId }, "stream failed");
        } else {
          // The code and the cause's kind only: a cause may quote model output (a done event
          // outside the contract, a failed insert's parameters).
          const cause = failure.cause instanceof Error ? failure.cause.name : undefined;
          ctx.logger.warn(
            { request_id: ctx.requestId, code: failure.code, cause, error: failure.message },
            "stream failed after the first chunk",
          );
        }
        controller.enqueue(
          sse(openAiErrorBody(failure.code, failure.message, failure.status, failure.details)),
        );
        controller.close();
      }
    },
    cancel() {
      if (!finished) ctx.logger.info({ request_id: ctx.requestId }, "client went away mid-stream");
      upstream.cancel();
    },
  });
  return {
    id,
    body,
    ...(plan.mode.kind === "proposal" ? { transactionId: prepared.id } : {}),
  };
}
