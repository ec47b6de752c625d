/**
 * The record of /v1 completions: trade proposals go to `proposals` (the same rows, mirror lines
 * and feedback as every proposal), everything else to `generations`. Both are committed before
 * the answer is complete: before the response (non-streamed), before the last chunk (streamed).
 */
import { type GenerationRow, generations } from "../../../db/schema/generations.ts";
import type { ProposalRow } from "../../../db/schema/proposals.ts";
import type { Phi3GenerateResponse, Timings, Usage } from "../../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../../deps.ts";
import { ApiError } from "../../errors.ts";
import type { Augmentation } from "../augment.ts";
import { insertProposal } from "../phi3.ts";
import { toLogLine } from "../records.ts";
import type { ChatPlan } from "./plan.ts";

export const round2 = (ms: number) => Math.round(ms * 100) / 100;

/** Commits one proposal made through /v1 and mirrors its log line. */
export async function recordProposal({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: {
    transactionId: string;
    plan: ChatPlan;
    prompt: string;
    augmentation: Augmentation;
    answer: Phi3GenerateResponse;
    timings: { augment_ms: number; phi3_ms: number };
  };
}): Promise<ProposalRow> {
  const { answer } = input;
  const row: ProposalRow = {
    transactionId: input.transactionId,
    createdAt: ctx.clock.now(),
    requestId: ctx.requestId,
    endpoint: "v1_chat_completions",
    prompt: input.prompt,
    augmentedPrompt: input.augmentation.prompt,
    exampleIds: input.augmentation.examples.map((e) => e.id),
    maxLength: input.plan.maxTokens,
    phi3Proposal: answer.proposal,
    phi3Model: answer.model,
    phi3PromptTokens: answer.usage.prompt_tokens,
    phi3CompletionTokens: answer.usage.completion_tokens,
    hermesAssessment: null,
    hermesModel: null,
    hermesPromptTokens: null,
    hermesCompletionTokens: null,
    hermesError: null,
    timings: { ...input.timings },
  };
  const started = performance.now();
  await insertProposal(ctx, row);
  row.timings.db_ms = round2(performance.now() - started);
  ctx.mirror.appendLog(toLogLine(row));
  ctx.logger.info(
    {
      request_id: ctx.requestId,
      transaction_id: row.transactionId,
      examples: row.exampleIds.length,
      phi3_tokens: answer.usage.completion_tokens,
      stream: input.plan.stream,
    },
    "proposal recorded (/v1)",
  );
  return row;
}

/** Commits one non-proposal completion. */
export async function recordGeneration({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: {
    id: string;
    plan: ChatPlan;
    answer: { model: string; finish_reason: "stop" | "length"; usage: Usage; timings: Timings };
    output: string;
    edgeTotalMs: number;
  };
}): Promise<GenerationRow> {
  const { plan, answer } = input;
  const row: GenerationRow = {
    id: input.id,
    createdAt: ctx.clock.now(),
    requestId: ctx.requestId,
    model: plan.model,
    nodeModel: answer.model,
    messages: plan.messages,
    responseFormat: plan.responseFormat,
    params: {
      max_tokens: plan.maxTokens,
      ...plan.sampling,
      ...(plan.stop ? { stop: plan.stop } : {}),
    },
    output: input.output,
    finishReason: answer.finish_reason,
    promptTokens: answer.usage.prompt_tokens,
    completionTokens: answer.usage.completion_tokens,
    stream: plan.stream,
    timings: { ...answer.timings, edge_total_ms: round2(input.edgeTotalMs) },
  };
  try {
    await ctx.db.insert(generations).values(row);
  } catch (err) {
    // Drizzle's error message lists the query's parameters (the conversation and the output):
    // keep the driver's own error as the cause, so that no model text reaches the error log.
    throw new ApiError(
      "database_unavailable",
      "Could not record the completion; nothing was acknowledged.",
      {},
      { cause: (err as { cause?: unknown }).cause ?? err },
    );
  }
  ctx.logger.info(
    {
      request_id: ctx.requestId,
      generation_id: row.id,
      model: row.model,
      mode: plan.mode.kind,
      completion_tokens: row.completionTokens,
      stream: plan.stream,
    },
    "generation recorded (/v1)",
  );
  return row;
}
