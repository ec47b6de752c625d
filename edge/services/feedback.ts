/** POST /feedback/phi3/: store a FeedbackItem against a recorded proposal. */
import { eq } from "drizzle-orm";
import { type FeedbackRow, type FeedbackType, feedbackItems } from "../../db/schema/feedback.ts";
import { proposals } from "../../db/schema/proposals.ts";
import type { TradeProposal } from "../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { toFeedbackLine } from "./records.ts";

export interface FeedbackInput {
  transactionId: string;
  feedbackType: FeedbackType;
  feedbackContent: unknown;
  timestamp?: Date;
  correctedProposal?: TradeProposal;
}

export async function submitFeedback({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: FeedbackInput;
}): Promise<FeedbackRow> {
  const receivedAt = ctx.clock.now();
  let proposal: { prompt: string } | undefined;
  try {
    [proposal] = await ctx.db
      .select({ prompt: proposals.prompt })
      .from(proposals)
      .where(eq(proposals.transactionId, input.transactionId))
      .limit(1);
  } catch (err) {
    throw new ApiError("database_unavailable", "Could not read the record.", {}, { cause: err });
  }
  if (!proposal) {
    throw new ApiError("not_found", "Unknown transaction_id: no proposal was recorded with it.", {
      transaction_id: input.transactionId,
    });
  }
  // Only a correction that carries a corrected proposal becomes a worked example.
  const isExample = input.feedbackType === "correction" && input.correctedProposal !== undefined;
  let row: FeedbackRow | undefined;
  try {
    [row] = await ctx.db
      .insert(feedbackItems)
      .values({
        transactionId: input.transactionId,
        feedbackType: input.feedbackType,
        feedbackContent: input.feedbackContent,
        timestamp: input.timestamp ?? receivedAt,
        correctedProposal: input.correctedProposal ?? null,
        receivedAt,
        requestId: ctx.requestId,
        exampleTicker: isExample
          ? (input.correctedProposal?.ticker.trim().toUpperCase() ?? null)
          : null,
        examplePrompt: isExample ? proposal.prompt : null,
      })
      .returning();
  } catch (err) {
    throw new ApiError(
      "database_unavailable",
      "Failed to store feedback; it was not recorded.",
      {},
      { cause: err },
    );
  }
  if (!row) throw new Error("insert returned no row");
  ctx.mirror.appendFeedback(toFeedbackLine(row));
  return row;
}
