/** Public request/response schemas (OpenAPI-described). Tests import the types from here. */
import { z } from "@hono/zod-openapi";
import { FEEDBACK_TYPES } from "../../db/schema/feedback.ts";
import { MAX_LENGTH_MAX, MAX_LENGTH_MIN, TradeProposal } from "../../gpu-node/contract/index.ts";

export const PROMPT_MAX_CHARS = 32_000;

/**
 * The instants a timestamp may name, in UTC: years 100 to 9999. Postgres holds more (4713 BC to
 * 294276 AD), but our drivers write dates as ISO strings (no year 0, no 5-digit years) and read
 * them back with Date parsing, which turns years below 100 into 19xx/20xx.
 */
export const TIMESTAMP_MIN = -59_011_459_200_000;
export const TIMESTAMP_MAX = 253_402_300_799_999;

/** An ISO-8601 date-time with an offset whose UTC instant falls in years 1-9999 (else a 422). */
const isoTimestamp = (field: string) =>
  z.iso
    .datetime({ offset: true, message: `${field} must be an ISO-8601 date-time` })
    .refine((v) => {
      const t = Date.parse(v);
      return t >= TIMESTAMP_MIN && t <= TIMESTAMP_MAX;
    }, `${field} must be between 0100-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z (in UTC)`);

const Prompt = z
  .string()
  .max(PROMPT_MAX_CHARS, `prompt must be at most ${PROMPT_MAX_CHARS} characters`)
  .refine((s) => s.trim().length > 0, "prompt must not be empty")
  // Postgres text cannot hold NUL; refuse it here rather than fail at the database.
  .refine((s) => !s.includes("\u0000"), "prompt must not contain NUL (\\u0000) characters")
  .openapi({ example: "AAPL broke below its 20-day moving average on high volume. Adjust?" });

const MaxLength = z
  .number()
  .int("max_length must be an integer")
  .min(MAX_LENGTH_MIN, `max_length must be at least ${MAX_LENGTH_MIN}`)
  .max(MAX_LENGTH_MAX, `max_length must be at most ${MAX_LENGTH_MAX}`)
  .default(256)
  .openapi({ description: "New tokens to generate at most.", example: 256 });

// Rebuilt from the contract's shape: schemas made before @hono/zod-openapi loaded lack .openapi().
export const TradeProposalSchema = z.strictObject(TradeProposal.shape).openapi("TradeProposal", {
  example: {
    ticker: "AAPL",
    action: "adjust",
    side: "LONG",
    new_stop_pct: 5,
    new_target_pct: 10,
    confidence: 0.85,
    rationale: "Price action suggests upward trend.",
  },
});

export const GenerateRequest = z
  .object({
    prompt: Prompt,
    max_length: MaxLength,
    model_id: z
      .string()
      .optional()
      .openapi({ description: '"hermes" (default) or "phi3".', example: "hermes" }),
  })
  .openapi("GenerateRequest");
export type GenerateRequest = z.input<typeof GenerateRequest>;

export const ModelGenerateRequest = z
  .object({ prompt: Prompt, max_length: MaxLength })
  .openapi("ModelGenerateRequest");
export type ModelGenerateRequest = z.input<typeof ModelGenerateRequest>;

export const HermesResponse = z.object({ generated_text: z.string() }).openapi("HermesResponse");

export const ProposeResponse = z
  .object({
    transaction_id: z.uuid(),
    phi3_proposal: TradeProposalSchema,
    hermes_assessment: z.string(),
  })
  .openapi("ProposeResponse");
export type ProposeResponse = z.infer<typeof ProposeResponse>;

export const FeedbackRequest = z
  .object({
    transaction_id: z.uuid("transaction_id must be a UUID"),
    feedback_type: z.enum(FEEDBACK_TYPES),
    feedback_content: z
      .union([z.record(z.string(), z.unknown()), z.string(), z.number(), z.array(z.unknown())])
      .openapi({ example: { comment: "The rationale needs to be more specific." } }),
    timestamp: isoTimestamp("timestamp").optional(),
    corrected_proposal: TradeProposalSchema.optional(),
  })
  .refine((v) => !JSON.stringify(v).includes("\\u0000"), {
    message: "feedback must not contain NUL (\\u0000) characters",
  })
  .openapi("FeedbackItem");
export type FeedbackRequest = z.input<typeof FeedbackRequest>;

export const FeedbackResponse = z
  .object({
    message: z.literal("Feedback received successfully"),
    transaction_id: z.uuid(),
  })
  .openapi("FeedbackResponse");

export const ExportQuery = z.object({
  kind: z.enum(["log", "feedback", "generations"]).openapi({
    description:
      "log: phi3_feedback_log.jsonl lines; feedback: phi3_feedback_data.jsonl lines; " +
      "generations: /v1 chat completions that are not trade proposals.",
  }),
  since: isoTimestamp("since").optional(),
});

export const HealthResponse = z
  .object({
    status: z.enum(["ok", "partial_error", "error"]),
    hermes_loaded: z.boolean(),
    phi3_loaded: z.boolean(),
    phi3_model_file_exists: z.boolean(),
    device: z.string(),
    loading: z.boolean(),
    edge: z.object({
      version: z.string(),
      runtime: z.string(),
      database: z.enum(["ok", "error"]),
      database_kind: z.string(),
      gpu_node: z.enum(["ok", "unreachable", "error"]),
      gpu_node_error: z.string().optional(),
    }),
    gpu_node: z.record(z.string(), z.unknown()).optional(),
    /** With GPU_NODE_URLS: each node's state, load and counts. */
    gpu_nodes: z.array(z.record(z.string(), z.unknown())).optional(),
  })
  .openapi("Health");
export type HealthResponse = z.infer<typeof HealthResponse>;

/** /health without a key: the seed's keys and status only. */
export const PublicHealthResponse = z
  .strictObject({
    status: z.enum(["ok", "partial_error", "error"]),
    hermes_loaded: z.boolean(),
    phi3_loaded: z.boolean(),
    phi3_model_file_exists: z.boolean(),
    device: z.string(),
  })
  .openapi("PublicHealth");

export const ErrorResponse = z
  .object({
    error: z.string(),
    code: z.string(),
    request_id: z.string(),
  })
  .catchall(z.unknown())
  .openapi("Error");

/** Error responses every route may give, for the OpenAPI document. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Malformed JSON or invalid model_id",
    401: "Missing or invalid API key",
    404: "Unknown transaction_id",
    413: "Body too large",
    415: "Content-Type is not application/json",
    422: "Invalid request body",
    429: "GPU node busy (Retry-After)",
    503: "GPU node unavailable or model not loaded",
    504: "GPU node timed out",
  };
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: descriptions[s] ?? "Error",
        content: { "application/json": { schema: ErrorResponse } },
      },
    ]),
  );
}
