/**
 * One proposal for the review page: the record, its feedback (each correction with the number of
 * later proposals that used it as a worked example), and the examples its own prompt was
 * augmented with (each with the proposal it corrected).
 */
import { asc, eq, inArray, sql } from "drizzle-orm";
import { type FeedbackRow, feedbackItems } from "../../db/schema/feedback.ts";
import { type ProposalRow, proposals } from "../../db/schema/proposals.ts";
import type { ServiceContext } from "../deps.ts";
import { ApiError } from "../errors.ts";

export interface FeedbackWithUse extends FeedbackRow {
  /** Later proposals whose prompt carried this item as a worked example. */
  usedIn: number;
}

export interface ExampleUsed {
  /** The feedback item's id. */
  id: string;
  /** The proposal it corrected; undefined when that item is gone. */
  item?: FeedbackRow;
}

export interface ProposalDetail {
  row: ProposalRow;
  feedback: FeedbackWithUse[];
  examples: ExampleUsed[];
}

export async function getProposal({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: { transactionId: string };
}): Promise<ProposalDetail> {
  if (!/^[0-9a-f-]{36}$/i.test(input.transactionId)) {
    throw new ApiError("not_found", "No proposal has this transaction id.", {
      transaction_id: input.transactionId,
    });
  }
  try {
    const [row] = await ctx.db
      .select()
      .from(proposals)
      .where(eq(proposals.transactionId, input.transactionId))
      .limit(1);
    if (!row) {
      throw new ApiError("not_found", "No proposal has this transaction id.", {
        transaction_id: input.transactionId,
      });
    }
    const items = await ctx.db
      .select({
        item: feedbackItems,
        // example_ids holds the ids as JSON strings.
        usedIn:
          sql<number>`(select count(*) from ${proposals} where ${proposals.exampleIds} @> jsonb_build_array(${feedbackItems.id}::text))`.mapWith(
            Number,
          ),
      })
      .from(feedbackItems)
      .where(eq(feedbackItems.transactionId, input.transactionId))
      .orderBy(asc(feedbackItems.id));
    const ids = row.exampleIds.map(Number).filter((n) => Number.isSafeInteger(n));
    const used =
      ids.length > 0
        ? await ctx.db.select().from(feedbackItems).where(inArray(feedbackItems.id, ids))
        : [];
    return {
      row,
      feedback: items.map(({ item, usedIn }) => ({
        ...item,
        usedIn: item.examplePrompt !== null ? usedIn : 0,
      })),
      examples: row.exampleIds.map((id) => ({ id, item: used.find((u) => String(u.id) === id) })),
    };
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError("database_unavailable", "Could not read the record.", {}, { cause: err });
  }
}
