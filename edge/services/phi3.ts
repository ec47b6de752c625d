/**
 * Phi-3 proposals: augment the prompt, generate schema-constrained JSON on the GPU node, record
 * the proposal before answering. The propose flow then asks Hermes for a critique.
 */
import { eq } from "drizzle-orm";
import { type ProposalEndpoint, type ProposalRow, proposals } from "../../db/schema/proposals.ts";
import type { TradeProposal } from "../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../deps.ts";
import { ApiError, describeError } from "../errors.ts";
import { timedQuery } from "../metrics.ts";
import { augmentPrompt } from "./augment.ts";
import { toLogLine } from "./records.ts";
import { storableOrNull, storableProposal, storableText } from "./storable.ts";

export interface Phi3Input {
  prompt: string;
  maxLength: number;
  endpoint: ProposalEndpoint;
}

export interface RecordedProposal {
  transactionId: string;
  proposal: TradeProposal;
  row: ProposalRow;
}

const elapsed = (from: number) => Math.round((performance.now() - from) * 100) / 100;

export async function insertProposal(ctx: ServiceContext, row: ProposalRow): Promise<void> {
  try {
    await timedQuery(ctx.metrics, "insert_proposal", () => ctx.db.insert(proposals).values(row));
  } catch (err) {
    throw new ApiError(
      "database_unavailable",
      "Could not record the proposal; nothing was acknowledged.",
      {},
      { cause: err },
    );
  }
}

/** Generates and records one proposal. The row is committed before this returns. */
export async function createProposal({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: Phi3Input;
}): Promise<RecordedProposal> {
  const started = performance.now();
  const augmentation = await augmentPrompt(ctx, input.prompt).catch((err: unknown) => {
    throw new ApiError(
      "database_unavailable",
      "Could not read past corrections for prompt augmentation.",
      {},
      { cause: err },
    );
  });
  const augmentMs = elapsed(started);
  const phi3 = await ctx.gpu.phi3Generate(
    { prompt: augmentation.prompt, max_tokens: input.maxLength },
    { signal: ctx.clientSignal, deadline: ctx.deadline, requestId: ctx.requestId },
  );
  const phi3Ms = elapsed(started) - augmentMs;
  // What a model produced is stored as storable text, and answered as stored (storable.ts).
  const proposal = storableProposal(phi3.proposal);
  const row: ProposalRow = {
    transactionId: ctx.newId(),
    createdAt: ctx.clock.now(),
    requestId: ctx.requestId,
    endpoint: input.endpoint,
    prompt: input.prompt,
    augmentedPrompt: augmentation.prompt,
    exampleIds: augmentation.examples.map((e) => e.id),
    maxLength: input.maxLength,
    phi3Proposal: proposal,
    phi3Model: storableText(phi3.model),
    phi3PromptTokens: phi3.usage.prompt_tokens,
    phi3CompletionTokens: phi3.usage.completion_tokens,
    hermesAssessment: null,
    hermesModel: null,
    hermesPromptTokens: null,
    hermesCompletionTokens: null,
    hermesError: null,
    timings: { augment_ms: augmentMs, phi3_ms: Math.round(phi3Ms * 100) / 100 },
  };
  const dbStarted = performance.now();
  await insertProposal(ctx, row);
  row.timings.db_ms = elapsed(dbStarted);
  ctx.metrics?.proposalRecorded(input.endpoint);
  ctx.metrics?.augmentationExamples(row.exampleIds.length);
  ctx.logger.info(
    {
      request_id: ctx.requestId,
      transaction_id: row.transactionId,
      examples: row.exampleIds.length,
      phi3_tokens: phi3.usage.completion_tokens,
    },
    "proposal recorded",
  );
  return { transactionId: row.transactionId, proposal, row };
}

/** /generate/phi3/ and /generate/ with model_id phi3: one recorded proposal. */
export async function generateProposal(args: {
  ctx: ServiceContext;
  input: Phi3Input;
}): Promise<RecordedProposal> {
  const recorded = await createProposal(args);
  args.ctx.mirror.appendLog(toLogLine(recorded.row));
  return recorded;
}

export interface ProposeResult {
  transactionId: string;
  proposal: TradeProposal;
  assessment: string;
}

/**
 * /propose_trade_adjustments/: Phi-3 proposes, the proposal is recorded, Hermes critiques with
 * 2 × max_length tokens, the critique (or its failure) is recorded. A Hermes failure after the
 * proposal was recorded is answered as an error that carries the transaction_id and proposal.
 */
export async function proposeTradeAdjustments({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: { prompt: string; maxLength: number };
}): Promise<ProposeResult> {
  const started = performance.now();
  const recorded = await createProposal({
    ctx,
    input: { ...input, endpoint: "propose_trade_adjustments" },
  });
  const { row } = recorded;
  const hermesStarted = performance.now();
  try {
    const critique = await ctx.gpu.hermesCritique(
      { proposal: recorded.proposal, max_length: input.maxLength },
      { signal: ctx.clientSignal, deadline: ctx.deadline, requestId: ctx.requestId },
    );
    row.hermesAssessment = storableText(critique.text);
    row.hermesModel = storableText(critique.model);
    row.hermesPromptTokens = critique.usage.prompt_tokens;
    row.hermesCompletionTokens = critique.usage.completion_tokens;
  } catch (err) {
    row.hermesError = storableOrNull(
      err instanceof ApiError ? `${err.code}: ${err.message}` : "internal error during critique",
    );
    row.timings = { ...row.timings, hermes_ms: elapsed(hermesStarted), total_ms: elapsed(started) };
    await saveCritique(ctx, row).then(
      () => ctx.mirror.appendLog(toLogLine(row)),
      (dbErr: unknown) => {
        ctx.logger.error(
          { err: describeError(dbErr), transaction_id: row.transactionId },
          "could not record the critique failure",
        );
      },
    );
    const reason = err instanceof ApiError ? err : undefined;
    throw new ApiError(
      reason?.code ?? "internal_error",
      `Hermes failed to assess the proposal: ${reason?.message ?? "internal error"} The proposal was recorded.`,
      {
        ...(reason?.details ?? {}),
        transaction_id: row.transactionId,
        phi3_proposal: row.phi3Proposal,
        hermes_assessment: null,
      },
      { cause: err, headers: reason?.headers },
    );
  }
  row.timings = { ...row.timings, hermes_ms: elapsed(hermesStarted), total_ms: elapsed(started) };
  try {
    await saveCritique(ctx, row);
  } catch (err) {
    await recordWriteFailure(ctx, row, err);
  }
  ctx.mirror.appendLog(toLogLine(row));
  return {
    transactionId: row.transactionId,
    proposal: recorded.proposal,
    assessment: row.hermesAssessment ?? "",
  };
}

async function saveCritique(ctx: ServiceContext, row: ProposalRow): Promise<void> {
  await ctx.db
    .update(proposals)
    .set({
      hermesAssessment: row.hermesAssessment,
      hermesModel: row.hermesModel,
      hermesPromptTokens: row.hermesPromptTokens,
      hermesCompletionTokens: row.hermesCompletionTokens,
      hermesError: row.hermesError,
      timings: row.timings,
    })
    .where(eq(proposals.transactionId, row.transactionId));
}

/**
 * The assessment could not be written although the proposal is recorded: say so in the row
 * (hermes_error, without the text that failed), mirror that, and answer an error that carries the
 * transaction_id and the proposal, as when Hermes itself fails.
 */
async function recordWriteFailure(
  ctx: ServiceContext,
  row: ProposalRow,
  err: unknown,
): Promise<never> {
  const why = describeError(err);
  ctx.logger.error(
    { err: why, request_id: ctx.requestId, transaction_id: row.transactionId },
    "could not record the assessment",
  );
  const failed: ProposalRow = {
    ...row,
    hermesAssessment: null,
    hermesError: `database_write_failed: the assessment could not be stored (${why.code ?? why.type})`,
  };
  const noted = await saveCritique(ctx, failed).then(
    () => true,
    (again: unknown) => {
      ctx.logger.error(
        { err: describeError(again), transaction_id: row.transactionId },
        "could not record why the assessment is missing",
      );
      return false;
    },
  );
  if (noted) ctx.mirror.appendLog(toLogLine(failed));
  throw new ApiError(
    "database_unavailable",
    "Could not record the assessment. The proposal was recorded.",
    {
      transaction_id: row.transactionId,
      phi3_proposal: row.phi3Proposal,
      hermes_assessment: null,
    },
    { cause: err },
  );
}
