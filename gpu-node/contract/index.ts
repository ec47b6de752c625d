/**
 * The internal API between the edge and the GPU node, and the trade-proposal schema.
 *
 * Defined once, imported by both sides. zod only: this module must load on Cloudflare Workers,
 * so it imports nothing from Node.
 */
import { z } from "zod";

// ---------------------------------------------------------------------------------------------
// The trade-proposal schema of the public API. Every Phi-3 output satisfies it by construction.
// ---------------------------------------------------------------------------------------------

/** The JSON Schema the seed used for guided decoding, verbatim. Key order matters: the grammar
 * emits keys in this order. */
export const TRADE_PROPOSAL_JSON_SCHEMA = {
  type: "object",
  properties: {
    ticker: { type: "string", description: "Ticker symbol" },
    action: { type: "string", enum: ["adjust", "pass", "abort"] },
    side: { type: "string", enum: ["LONG", "SHORT"] },
    new_stop_pct: { type: ["number", "null"] },
    new_target_pct: { type: ["number", "null"] },
    confidence: { type: "number", minimum: 0, maximum: 1 },
    rationale: { type: "string", description: "One-sentence justification" },
  },
  required: ["ticker", "action", "confidence", "rationale"],
  additionalProperties: false,
} as const;

export const TradeProposal = z
  .object({
    ticker: z.string().describe("Ticker symbol"),
    action: z.enum(["adjust", "pass", "abort"]),
    side: z.enum(["LONG", "SHORT"]).optional(),
    new_stop_pct: z.number().nullable().optional(),
    new_target_pct: z.number().nullable().optional(),
    confidence: z.number().min(0).max(1),
    rationale: z.string().describe("One-sentence justification"),
  })
  .strict();
export type TradeProposal = z.infer<typeof TradeProposal>;

/** The proposal with its keys in the schema's order (jsonb storage does not keep key order). */
export function canonicalProposal(p: TradeProposal): TradeProposal {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(TRADE_PROPOSAL_JSON_SCHEMA.properties)) {
    const value = (p as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out as TradeProposal;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/** Bounds of `max_length` (new tokens) accepted by both sides. */
export const MAX_LENGTH_MIN = 1;
export const MAX_LENGTH_MAX = 4096;
export const MaxLength = z.number().int().min(MAX_LENGTH_MIN).max(MAX_LENGTH_MAX);

export const Sampling = z
  .object({
    /** 0 = greedy (the default). */
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    /** Keep only the k most likely tokens; 0 (the default) keeps all. */
    top_k: z.number().int().min(0).max(100_000).optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .optional(),
  })
  .strict();
export type Sampling = z.infer<typeof Sampling>;

export const Timings = z.object({
  /** Time spent waiting for a free slot in the model's queue. */
  queue_ms: z.number().nonnegative(),
  /** Prompt processing (prefill). */
  prompt_ms: z.number().nonnegative(),
  /** Token generation. */
  generate_ms: z.number().nonnegative(),
  total_ms: z.number().nonnegative(),
});
export type Timings = z.infer<typeof Timings>;

export const Usage = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof Usage>;

export const FinishReason = z.enum(["stop", "length"]);
export type FinishReason = z.infer<typeof FinishReason>;

// ---------------------------------------------------------------------------------------------
// Hermes (free text)
// ---------------------------------------------------------------------------------------------

/** One turn of a conversation (the OpenAI API's messages, text only). */
export const ChatMessage = z
  .object({ role: z.enum(["system", "user", "assistant"]), content: z.string() })
  .strict();
export type ChatMessage = z.infer<typeof ChatMessage>;

/** Strings that end the generation when produced (not included in the text); OpenAI allows 4. */
export const StopSequences = z.array(z.string().min(1)).min(1).max(4);

export const HermesGenerateRequest = z
  .object({
    /** A single user turn. Exactly one of `prompt` and `messages`. */
    prompt: z.string().min(1).optional(),
    /** A whole conversation; the last message is the user's. Exactly one of the two. */
    messages: z.array(ChatMessage).min(1).optional(),
    /** New tokens to generate at most. */
    max_tokens: MaxLength,
    /** Overrides the node's HERMES_SYSTEM_PROMPT for this request (a system message in
     * `messages` overrides both). */
    system_prompt: z.string().optional(),
    stop: StopSequences.optional(),
    sampling: Sampling.optional(),
  })
  .strict()
  .refine((r) => (r.prompt === undefined) !== (r.messages === undefined), {
    message: "exactly one of prompt and messages is required",
    path: ["prompt"],
  });
export type HermesGenerateRequest = z.infer<typeof HermesGenerateRequest>;

export const HermesGenerateResponse = z.object({
  text: z.string(),
  model: z.string(),
  finish_reason: FinishReason,
  usage: Usage,
  timings: Timings,
});
export type HermesGenerateResponse = z.infer<typeof HermesGenerateResponse>;

/** The propose flow's critique: Hermes assesses a Phi-3 proposal. The node builds the seed's
 * critique prompt and generates up to 2 × max_length tokens. */
export const HermesCritiqueRequest = z
  .object({
    proposal: TradeProposal,
    /** The caller's max_length; the critique may use twice as many tokens. */
    max_length: MaxLength,
    sampling: Sampling.optional(),
  })
  .strict();
export type HermesCritiqueRequest = z.infer<typeof HermesCritiqueRequest>;

// ---------------------------------------------------------------------------------------------
// Phi-3 (schema-constrained JSON)
// ---------------------------------------------------------------------------------------------

export const Phi3GenerateRequest = z
  .object({
    /** The user's prompt, already augmented with worked examples by the edge. */
    prompt: z.string().min(1),
    /** Token budget; the output always closes into a valid object within it. */
    max_tokens: MaxLength,
    sampling: Sampling.optional(),
  })
  .strict();
export type Phi3GenerateRequest = z.infer<typeof Phi3GenerateRequest>;

export const Phi3GenerateResponse = z.object({
  proposal: TradeProposal,
  /** The exact JSON text the model produced. */
  raw: z.string(),
  model: z.string(),
  finish_reason: FinishReason,
  usage: Usage,
  timings: Timings,
});
export type Phi3GenerateResponse = z.infer<typeof Phi3GenerateResponse>;

// ---------------------------------------------------------------------------------------------
// Structured output for any JSON Schema of the documented subset (both models)
// ---------------------------------------------------------------------------------------------

/** A JSON Schema of the subset (gpu-node/structured/ checks it; anything else is a 400). */
export const JsonSchemaObject = z.record(z.string(), z.unknown());

export const JsonGenerateRequest = z
  .object({
    /** A single user turn. Exactly one of `prompt` and `messages`. */
    prompt: z.string().min(1).optional(),
    messages: z.array(ChatMessage).min(1).optional(),
    json_schema: JsonSchemaObject,
    /** The output always closes into a valid value within this many tokens. */
    max_tokens: MaxLength,
    sampling: Sampling.optional(),
  })
  .strict()
  .refine((r) => (r.prompt === undefined) !== (r.messages === undefined), {
    message: "exactly one of prompt and messages is required",
    path: ["prompt"],
  });
export type JsonGenerateRequest = z.infer<typeof JsonGenerateRequest>;

export const JsonGenerateResponse = z.object({
  /** The parsed value; valid against json_schema. */
  json: z.unknown(),
  /** The exact JSON text the model produced. */
  raw: z.string(),
  model: z.string(),
  finish_reason: FinishReason,
  usage: Usage,
  timings: Timings,
});
export type JsonGenerateResponse = z.infer<typeof JsonGenerateResponse>;

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

export const ModelState = z.enum(["loading", "ready", "error", "missing", "disabled"]);
export type ModelState = z.infer<typeof ModelState>;

export const ModelHealth = z.object({
  state: ModelState,
  loaded: z.boolean(),
  /** What was loaded (file or folder path) and its display name. */
  path: z.string(),
  name: z.string().optional(),
  file_exists: z.boolean(),
  /** 0..1 while loading. */
  progress: z.number().min(0).max(1).optional(),
  /** Why loading failed, e.g. "model file not found: /models/x.gguf (run `npm run models:pull`)". */
  error: z.string().optional(),
  /** Tokens the model's context holds (prompt + answer), when the node knows it. */
  context_length: z.number().int().positive().optional(),
  /** Requests waiting + running / allowed. */
  queue: z
    .object({ running: z.number().int(), waiting: z.number().int(), capacity: z.number().int() })
    .optional(),
});
export type ModelHealth = z.infer<typeof ModelHealth>;

export const HealthStatus = z.enum(["ok", "partial_error", "error", "loading"]);
export type HealthStatus = z.infer<typeof HealthStatus>;

export const GpuNodeHealth = z.object({
  /** ok: both loaded; partial_error: one; error: none; loading: still loading. */
  status: HealthStatus,
  hermes_loaded: z.boolean(),
  phi3_loaded: z.boolean(),
  phi3_model_file_exists: z.boolean(),
  /** "cuda" or "cpu". */
  device: z.string(),
  /** e.g. "NVIDIA GeForce RTX 3060". */
  device_name: z.string().optional(),
  /** Memory in use, MiB: VRAM on CUDA when known, resident set otherwise. */
  memory: z
    .object({
      vram_used_mib: z.number().optional(),
      vram_total_mib: z.number().optional(),
      rss_mib: z.number(),
    })
    .optional(),
  models: z.object({ hermes: ModelHealth, phi3: ModelHealth }),
  /** The worst-case VRAM plan computed at start-up (gpu-node/vram-plan.ts). */
  vram_plan: z
    .object({
      items: z.array(z.object({ item: z.string(), mib: z.number(), basis: z.string() })),
      total_mib: z.number(),
      complete: z.boolean(),
      unknown: z.array(z.string()).optional(),
      budget_mib: z.number().optional(),
      budget_source: z.enum(["VRAM_BUDGET_MIB", "card"]).optional(),
      fits_budget: z.boolean().nullable(),
      watchdog_threshold_mib: z.number(),
      under_watchdog_threshold: z.boolean(),
    })
    .optional(),
  version: z.string(),
  uptime_s: z.number(),
});
export type GpuNodeHealth = z.infer<typeof GpuNodeHealth>;

/** Derives the seed's status from the two models. */
export function overallStatus(hermes: ModelState, phi3: ModelState): HealthStatus {
  if (hermes === "loading" || phi3 === "loading") return "loading";
  const loaded = (hermes === "ready" ? 1 : 0) + (phi3 === "ready" ? 1 : 0);
  return loaded === 2 ? "ok" : loaded === 1 ? "partial_error" : "error";
}

// ---------------------------------------------------------------------------------------------
// Errors: the same envelope as the public API
// ---------------------------------------------------------------------------------------------

export { ERROR_STATUS, ErrorCode, ServiceError, statusOf } from "./errors.ts";

import { ErrorCode } from "./errors.ts";

export const ErrorBody = z
  .object({
    error: z.string(),
    code: ErrorCode,
    request_id: z.string(),
  })
  .catchall(z.unknown());
export type ErrorBody = z.infer<typeof ErrorBody>;

/** The seed's messages, kept verbatim for existing clients. */
export const MESSAGES = {
  hermesNotLoaded: "Hermes model not loaded. Please check server logs.",
  phi3NotLoaded: "Phi-3 ONNX model not loaded. Please check server logs.",
  invalidModelId: "Invalid model_id specified. Choose 'hermes' or 'phi3'.",
} as const;

// ---------------------------------------------------------------------------------------------
// Routes and headers
// ---------------------------------------------------------------------------------------------

export const GPU_ROUTES = {
  health: "/v1/health",
  hermesGenerate: "/v1/hermes/generate",
  hermesCritique: "/v1/hermes/critique",
  phi3Generate: "/v1/phi3/generate",
  /** Structured output for any schema of the subset (see JsonGenerateRequest). */
  hermesJson: "/v1/hermes/json",
  phi3Json: "/v1/phi3/json",
  /** Streaming variants: same request body, an NDJSON stream of StreamEvent (stream.ts). */
  hermesGenerateStream: "/v1/hermes/generate/stream",
  hermesCritiqueStream: "/v1/hermes/critique/stream",
  phi3GenerateStream: "/v1/phi3/generate/stream",
  hermesJsonStream: "/v1/hermes/json/stream",
  phi3JsonStream: "/v1/phi3/json/stream",
} as const;

/** Forwarded by the edge so logs on both sides share one id. */
export const REQUEST_ID_HEADER = "X-Request-Id";
/** Milliseconds the caller will wait; the node aborts the work after it. */
export const DEADLINE_HEADER = "X-Deadline-Ms";
