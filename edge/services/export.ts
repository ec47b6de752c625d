/**
 * JSONL export of the record, in the seed's line shapes. Keyset pagination in batches keeps
 * memory constant however large the table, on PGlite, Postgres and Workers alike.
 */
import { and, asc, count, gt, gte, or } from "drizzle-orm";
import type { Database } from "../../db/database.ts";
import { feedbackItems } from "../../db/schema/feedback.ts";
import { generations } from "../../db/schema/generations.ts";
import { proposals } from "../../db/schema/proposals.ts";
import { toFeedbackLine, toGenerationLine, toLogLine } from "./records.ts";

export type ExportKind = "log" | "feedback" | "generations";

export interface ExportInput {
  kind: ExportKind;
  since?: Date;
  batchSize?: number;
}

/** Rows matching the export, for progress reporting. */
export async function countExport(db: Database, input: ExportInput): Promise<number> {
  if (input.kind === "generations") {
    const [row] = await db
      .select({ n: count() })
      .from(generations)
      .where(input.since ? gte(generations.createdAt, input.since) : undefined);
    return Number(row?.n ?? 0);
  }
  const [row] =
    input.kind === "log"
      ? await db
          .select({ n: count() })
          .from(proposals)
          .where(input.since ? gte(proposals.createdAt, input.since) : undefined)
      : await db
          .select({ n: count() })
          .from(feedbackItems)
          .where(input.since ? gte(feedbackItems.receivedAt, input.since) : undefined);
  return Number(row?.n ?? 0);
}

/** Yields one JSON object per record, oldest first. */
export async function* exportLines(
  db: Database,
  input: ExportInput,
): AsyncGenerator<Record<string, unknown>> {
  const batch = input.batchSize ?? 500;
  if (input.kind === "generations") {
    let after: { at: Date; id: string } | undefined;
    for (;;) {
      const rows = await db
        .select()
        .from(generations)
        .where(
          and(
            input.since ? gte(generations.createdAt, input.since) : undefined,
            after
              ? or(
                  gt(generations.createdAt, after.at),
                  and(gte(generations.createdAt, after.at), gt(generations.id, after.id)),
                )
              : undefined,
          ),
        )
        .orderBy(asc(generations.createdAt), asc(generations.id))
        .limit(batch);
      for (const row of rows) yield toGenerationLine(row);
      const last = rows.at(-1);
      if (!last || rows.length < batch) return;
      after = { at: last.createdAt, id: last.id };
    }
  }
  if (input.kind === "log") {
    let after: { at: Date; id: string } | undefined;
    for (;;) {
      const rows = await db
        .select()
        .from(proposals)
        .where(
          and(
            input.since ? gte(proposals.createdAt, input.since) : undefined,
            after
              ? or(
                  gt(proposals.createdAt, after.at),
                  and(gte(proposals.createdAt, after.at), gt(proposals.transactionId, after.id)),
                )
              : undefined,
          ),
        )
        .orderBy(asc(proposals.createdAt), asc(proposals.transactionId))
        .limit(batch);
      for (const row of rows) yield toLogLine(row);
      const last = rows.at(-1);
      if (!last || rows.length < batch) return;
      after = { at: last.createdAt, id: last.transactionId };
    }
  } else {
    let after: number | undefined;
    for (;;) {
      // ids grow with time, so id order is arrival order and a unique keyset.
      const rows = await db
        .select()
        .from(feedbackItems)
        .where(
          and(
            input.since ? gte(feedbackItems.receivedAt, input.since) : undefined,
            after !== undefined ? gt(feedbackItems.id, after) : undefined,
          ),
        )
        .orderBy(asc(feedbackItems.id))
        .limit(batch);
      for (const row of rows) yield toFeedbackLine(row);
      const last = rows.at(-1);
      if (!last || rows.length < batch) return;
      after = last.id;
    }
  }
}
