/**
 * The review queue: proposals without feedback, oldest first, one at a time. `after` moves to the
 * next one (older-first order), `before` to the previous one; neither gives the first.
 */
import { and, asc, count, desc, sql } from "drizzle-orm";
import { type ProposalRow, proposals } from "../../db/schema/proposals.ts";
import type { ServiceContext } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { type Cursor, filterConditions, keyset } from "./list-proposals.ts";

export interface QueueItem {
  /** Undefined when nothing is left in that direction. */
  row?: ProposalRow;
  /** Proposals without feedback in all. */
  remaining: number;
  /** Whether there is an item before / after this one. */
  hasPrevious: boolean;
  hasNext: boolean;
}

export async function findQueueItem({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: { after?: Cursor; before?: Cursor };
}): Promise<QueueItem> {
  const pending = filterConditions({ feedback: "without" });
  try {
    const [row] = await ctx.db
      .select()
      .from(proposals)
      .where(
        and(
          ...pending,
          input.after ? keyset(">", input.after) : undefined,
          input.before ? keyset("<", input.before) : undefined,
        ),
      )
      .orderBy(
        ...(input.before
          ? [desc(proposals.createdAt), desc(proposals.transactionId)]
          : [asc(proposals.createdAt), asc(proposals.transactionId)]),
      )
      .limit(1);
    const [total] = await ctx.db
      .select({ n: count() })
      .from(proposals)
      .where(and(...pending));
    const neighbour = async (op: "<" | ">", at: ProposalRow) => {
      const [n] = await ctx.db
        .select({ one: sql<number>`1` })
        .from(proposals)
        .where(and(...pending, keyset(op, { at: at.createdAt, id: at.transactionId })))
        .limit(1);
      return n !== undefined;
    };
    return {
      row,
      remaining: Number(total?.n ?? 0),
      hasPrevious: row ? await neighbour("<", row) : false,
      hasNext: row ? await neighbour(">", row) : false,
    };
  } catch (err) {
    throw new ApiError("database_unavailable", "Could not read the record.", {}, { cause: err });
  }
}
