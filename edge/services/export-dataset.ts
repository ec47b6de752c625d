/**
 * Fine-tuning datasets from the corrections, the latest correction per proposal winning:
 * - sft: OpenAI's chat fine-tuning format, `{"messages": [user prompt, assistant corrected JSON]}`
 *   (Phi-3 is prompted without a system message, so there is none);
 * - dpo: `{"prompt", "chosen": corrected JSON, "rejected": original JSON}`, only where the
 *   correction differs from the proposal (an absent stop or target counts as null).
 * The user prompt is the client's prompt as it was sent to the edge, without the worked examples
 * the edge prepended (a model trained on it should not need them). Keyset pagination by
 * transaction id keeps memory constant, on PGlite, Postgres and Workers alike.
 */
import { and, asc, countDistinct, eq, gt, gte, isNotNull, sql } from "drizzle-orm";
import type { Database } from "../../db/database.ts";
import { feedbackItems } from "../../db/schema/feedback.ts";
import { proposals } from "../../db/schema/proposals.ts";
import { canonicalProposal, type TradeProposal } from "../../gpu-node/contract/index.ts";
import { sameProposal } from "../review/form-model.ts";

export type DatasetFormat = "sft" | "dpo";

export interface DatasetInput {
  format: DatasetFormat;
  /** Corrections received at or after this time. */
  since?: Date;
  batchSize?: number;
}

export interface SftLine {
  messages: { role: "system" | "user" | "assistant"; content: string }[];
}

export interface DpoLine {
  prompt: string;
  chosen: string;
  rejected: string;
}

const json = (p: TradeProposal) => JSON.stringify(canonicalProposal(p));

const corrections = (since?: Date) =>
  and(
    eq(feedbackItems.feedbackType, "correction"),
    isNotNull(feedbackItems.correctedProposal),
    since ? gte(feedbackItems.receivedAt, since) : undefined,
  );

/** Proposals with at least one matching correction (an upper bound for dpo), for progress. */
export async function countDataset(db: Database, input: DatasetInput): Promise<number> {
  const [row] = await db
    .select({ n: countDistinct(feedbackItems.transactionId) })
    .from(feedbackItems)
    .where(corrections(input.since));
  return Number(row?.n ?? 0);
}

/** Yields one dataset line per proposal, by transaction id. */
export async function* exportDataset({
  ctx,
  input,
}: {
  ctx: { db: Database };
  input: DatasetInput;
}): AsyncGenerator<SftLine | DpoLine> {
  const batch = input.batchSize ?? 500;
  let after: string | undefined;
  for (;;) {
    const rows = await ctx.db
      .selectDistinctOn([feedbackItems.transactionId], {
        transactionId: feedbackItems.transactionId,
        corrected: feedbackItems.correctedProposal,
        prompt: proposals.prompt,
        original: proposals.phi3Proposal,
      })
      .from(feedbackItems)
      .innerJoin(proposals, eq(proposals.transactionId, feedbackItems.transactionId))
      .where(
        and(corrections(input.since), after ? gt(feedbackItems.transactionId, after) : undefined),
      )
      .orderBy(
        asc(feedbackItems.transactionId),
        sql`${feedbackItems.receivedAt} desc`,
        sql`${feedbackItems.id} desc`,
      )
      .limit(batch);
    for (const row of rows) {
      if (!row.corrected) continue;
      const chosen = json(row.corrected);
      if (input.format === "sft") {
        yield {
          messages: [
            { role: "user", content: row.prompt },
            { role: "assistant", content: chosen },
          ],
        };
      } else {
        if (!sameProposal(row.corrected, row.original)) {
          yield { prompt: row.prompt, chosen, rejected: json(row.original) };
        }
      }
    }
    const last = rows.at(-1);
    if (!last || rows.length < batch) return;
    after = last.transactionId;
  }
}
