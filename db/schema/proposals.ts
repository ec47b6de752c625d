import { sql } from "drizzle-orm";
import { index, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import type { TradeProposal } from "../../gpu-node/contract/index.ts";

/** Which public endpoint made a proposal. */
export type ProposalEndpoint =
  | "generate"
  | "generate_phi3"
  | "propose_trade_adjustments"
  /** POST /v1/chat/completions with model phi3 (the OpenAI-compatible surface). */
  | "v1_chat_completions";

export interface ProposalTimings {
  augment_ms?: number;
  phi3_ms?: number;
  hermes_ms?: number;
  db_ms?: number;
  total_ms?: number;
}

/** One Phi-3 proposal: the seed's phi3_feedback_log.jsonl line, plus what we need to learn from it. */
export const proposals = pgTable(
  "proposals",
  {
    transactionId: uuid("transaction_id").primaryKey(),
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull(),
    requestId: text("request_id"),
    endpoint: text("endpoint").$type<ProposalEndpoint>().notNull(),
    prompt: text("prompt").notNull(),
    augmentedPrompt: text("augmented_prompt").notNull(),
    /** Feedback item ids used as worked examples, in the order they were prepended. */
    exampleIds: jsonb("example_ids").$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    maxLength: integer("max_length").notNull(),
    phi3Proposal: jsonb("phi3_proposal").$type<TradeProposal>().notNull(),
    phi3Model: text("phi3_model").notNull(),
    phi3PromptTokens: integer("phi3_prompt_tokens").notNull(),
    phi3CompletionTokens: integer("phi3_completion_tokens").notNull(),
    hermesAssessment: text("hermes_assessment"),
    hermesModel: text("hermes_model"),
    hermesPromptTokens: integer("hermes_prompt_tokens"),
    hermesCompletionTokens: integer("hermes_completion_tokens"),
    /** Why the critique failed, when Phi-3 succeeded and Hermes did not. */
    hermesError: text("hermes_error"),
    timings: jsonb("timings").$type<ProposalTimings>().notNull().default(sql`'{}'::jsonb`),
  },
  (t) => [index("proposals_created_at_idx").on(t.createdAt, t.transactionId)],
);

export type ProposalRow = typeof proposals.$inferSelect;
export type NewProposalRow = typeof proposals.$inferInsert;
