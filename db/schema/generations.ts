import { sql } from "drizzle-orm";
import {
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import type { ChatMessage, FinishReason, Timings } from "../../gpu-node/contract/index.ts";

/** The sampling and length settings a /v1 request asked for (what decided the output). */
export interface GenerationParams {
  max_tokens: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string[];
}

/** The GPU node's timings plus the edge's own total. */
export interface GenerationTimings extends Partial<Timings> {
  edge_total_ms?: number;
}

/**
 * One /v1 chat completion that is not a trade proposal (Hermes text or JSON, Phi-3 JSON for a
 * schema other than the trade schema): what was asked, what was answered, what it cost. Phi-3
 * trade proposals made through /v1 are rows of `proposals`, like every other proposal.
 */
export const generations = pgTable(
  "generations",
  {
    /** The completion's id is `chatcmpl-<id>`. */
    id: uuid("id").primaryKey(),
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull(),
    requestId: text("request_id"),
    /** The public model id ("hermes", "phi3"). */
    model: text("model").notNull(),
    /** The model the GPU node ran (its display name). */
    nodeModel: text("node_model").notNull(),
    /** The conversation as sent to the GPU node (text only). */
    messages: jsonb("messages").$type<ChatMessage[]>().notNull(),
    /** The request's response_format (null: plain text). */
    responseFormat: jsonb("response_format").$type<Record<string, unknown>>(),
    params: jsonb("params").$type<GenerationParams>().notNull(),
    output: text("output").notNull(),
    finishReason: text("finish_reason").$type<FinishReason>().notNull(),
    promptTokens: integer("prompt_tokens").notNull(),
    completionTokens: integer("completion_tokens").notNull(),
    stream: boolean("stream").notNull(),
    timings: jsonb("timings").$type<GenerationTimings>().notNull().default(sql`'{}'::jsonb`),
  },
  (t) => [index("generations_created_at_idx").on(t.createdAt, t.id)],
);

export type GenerationRow = typeof generations.$inferSelect;
export type NewGenerationRow = typeof generations.$inferInsert;
