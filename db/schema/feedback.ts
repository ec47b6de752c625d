import { sql } from "drizzle-orm";
import {
  bigserial,
  customType,
  index,
  jsonb,
  pgTable,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import type { TradeProposal } from "../../gpu-node/contract/index.ts";
import { proposals } from "./proposals.ts";

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

export const FEEDBACK_TYPES = ["correction", "rating", "qualitative_comment"] as const;
export type FeedbackType = (typeof FEEDBACK_TYPES)[number];

/**
 * One FeedbackItem (the seed's phi3_feedback_data.jsonl line). Several per proposal are allowed.
 *
 * A correction with a corrected_proposal is a worked example for prompt augmentation. To keep the
 * example search a bounded index lookup at a million rows, the fields it ranks on are copied here
 * when the item is written (`example_ticker`, `example_prompt`, and Postgres derives
 * `example_tsv`), and indexed only for such rows.
 */
export const feedbackItems = pgTable(
  "feedback_items",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    transactionId: uuid("transaction_id")
      .notNull()
      .references(() => proposals.transactionId, { onDelete: "cascade" }),
    feedbackType: text("feedback_type").$type<FeedbackType>().notNull(),
    feedbackContent: jsonb("feedback_content").$type<unknown>().notNull(),
    /** The client's timestamp, or the time received when it gave none. */
    timestamp: timestamp("timestamp", { withTimezone: true, precision: 3 }).notNull(),
    correctedProposal: jsonb("corrected_proposal").$type<TradeProposal>(),
    receivedAt: timestamp("received_at", { withTimezone: true, precision: 3 }).notNull(),
    requestId: text("request_id"),
    /** Upper-cased ticker of the corrected proposal (examples only). */
    exampleTicker: text("example_ticker"),
    /** The original request's prompt, compared with new prompts. Set only for a correction with a
     * corrected_proposal: non-null marks a worked example. */
    examplePrompt: text("example_prompt"),
    /** The example prompt's words ('simple' text search: no stemming, any language), kept by
     * Postgres, so ranking a pool of examples by shared words costs no parsing per query. */
    exampleTsv: tsvector("example_tsv").generatedAlwaysAs(
      sql`to_tsvector('simple', coalesce("example_prompt", ''))`,
    ),
  },
  (t) => [
    index("feedback_items_transaction_idx").on(t.transactionId),
    index("feedback_items_received_at_idx").on(t.receivedAt, t.id),
    index("feedback_examples_ticker_idx")
      .on(t.exampleTicker, t.receivedAt.desc())
      .where(sql`${t.examplePrompt} is not null`),
    index("feedback_examples_recent_idx")
      .on(t.receivedAt.desc())
      .where(sql`${t.examplePrompt} is not null`),
    index("feedback_examples_tsv_idx")
      .using("gin", t.exampleTsv)
      .where(sql`${t.examplePrompt} is not null`),
  ],
);

export type FeedbackRow = typeof feedbackItems.$inferSelect;
export type NewFeedbackRow = typeof feedbackItems.$inferInsert;
