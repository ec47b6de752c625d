/** POST /feedback/phi3/: store a FeedbackItem against a recorded proposal. */
import { eq } from "drizzle-orm";
import { type FeedbackRow, type FeedbackType, feedbackItems } from "../../db/schema/feedback.ts";
import { proposals } from "../../db/schema/proposals.ts";
import { TradeProposal } from "../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { timedQuery } from "../metrics.ts";
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
  // Checked here too, whoever the caller (the JSON route, the review form): a worked example
  // must satisfy the trade schema.
  if (input.correctedProposal !== undefined) {
    const checked = TradeProposal.safeParse(input.correctedProposal);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      throw new ApiError(
        "invalid_request",
        `Invalid corrected_proposal: ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`,
        {
          issues: checked.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
        },
      );
    }
  }
  let proposal: { prompt: string } | undefined;
  try {
    [proposal] = await timedQuery(ctx.metrics, "select_proposal", () =>
      ctx.db
        .select({ prompt: proposals.prompt })
        .from(proposals)
        .where(eq(proposals.transactionId, input.transactionId))
        .limit(1),
    );
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
    [row] = await timedQuery(ctx.metrics, "insert_feedback", () =>
      ctx.db
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
        .returning(),
    );
  } catch (err) {
    throw new ApiError(
      "database_unavailable",
      "Failed to store feedback; it was not recorded.",
      {},
      { cause: err },
    );
  }
  if (!row) throw new Error("insert returned no row");
  ctx.metrics?.feedbackRecorded(row.feedbackType);
  ctx.mirror.appendFeedback(toFeedbackLine(row));
  return row;
}
