/**
 * The small interfaces between the GPU node's HTTP service and its two model runtimes.
 *
 * The service (app.ts) only knows these; hermes/ and phi3/ implement them. Tests swap in
 * real-but-tiny models, or a scripted runtime for queue and abort tests.
 */
import type {
  ChatMessage,
  ErrorCode,
  FinishReason,
  Sampling,
  TradeProposal,
  Usage,
} from "./contract/index.ts";
import type { CompiledGrammar } from "./phi3/xgrammar.ts";
import type { BudgetPlanner } from "./structured/budget.ts";
import type { ByteNfa } from "./structured/language.ts";

export interface LoadProgress {
  /** 0..1 */
  fraction: number;
  /** Short human-readable phase, e.g. "reading metadata", "compiling grammar". */
  phase: string;
}

export interface LoadOptions {
  signal?: AbortSignal;
  onProgress?: (progress: LoadProgress) => void;
}

/** What a caller hands a generation besides its input (the target signature of every runtime's
 * generate(input, control) this round). */
export interface GenerateControl {
  /** Aborting stops this generation's sequence within one decode step. */
  signal: AbortSignal;
  /** Each piece of text as it is produced, in order; their concatenation is the result's text. */
  onText?: (piece: string) => void;
}

export interface GenerationTimings {
  prompt_ms: number;
  generate_ms: number;
}

export interface HermesGenerateInput {
  prompt: string;
  systemPrompt: string;
  maxTokens: number;
  /** When set, maxTokens may be shortened to what the context has left, but not below this. */
  minTokens?: number;
  sampling?: Sampling;
}

export interface HermesResult {
  text: string;
  finishReason: FinishReason;
  usage: Usage;
  timings: GenerationTimings;
}

export interface HermesRuntime {
  /** Display name of the loaded model, e.g. the GGUF's general.name or file name. */
  readonly modelName: string;
  /** "cuda" or "cpu", and the GPU's name when known. */
  readonly device: { kind: "cuda" | "cpu"; name?: string };
  /** Concurrent generations this runtime can run (context sequences). */
  readonly parallel: number;
  generate(input: HermesGenerateInput, signal: AbortSignal): Promise<HermesResult>;
  /** Structured output for any schema of the subset (runtimes without it answer 503). */
  generateJson?(input: JsonGenerateInput, signal: AbortSignal): Promise<JsonResult>;
  /** VRAM in use by the runtime's GPU, MiB, when known. */
  vram?(): Promise<{ usedMiB: number; totalMiB: number } | undefined>;
  dispose(): Promise<void>;
}

export interface Phi3GenerateInput {
  /** The user's (augmented) prompt; the runtime applies the model's chat template. */
  prompt: string;
  maxTokens: number;
  sampling?: Sampling;
  /** Another output language than the trade schema (a compiled JSON Schema of the subset,
   * gpu-node/structured/); the result's raw text is then that schema's JSON, not a proposal. */
  constraint?: Phi3Constraint;
}

/** The three grammar parts of a generation: xgrammar's compiled grammar, the byte automaton of
 * the same language and the budget planner on the model's vocabulary. */
export interface Phi3Constraint {
  grammar: CompiledGrammar;
  nfa: ByteNfa;
  planner: BudgetPlanner;
}

/** Structured output for any JSON Schema of the subset (both models; gpu-node/structured/). */
export interface JsonGenerateInput {
  /** Exactly one of prompt and messages (Phi-3 takes prompt only). */
  prompt?: string;
  messages?: ChatMessage[];
  /** Hermes: the system prompt when `messages` has none. */
  systemPrompt?: string;
  /** A JSON Schema of the subset; refused with 400 invalid_schema / unsupported_schema. */
  schema: Record<string, unknown>;
  /** The output always closes into a valid value within this many tokens (422
   * budget_too_small below the schema's minimum). */
  maxTokens: number;
  sampling?: Sampling;
}

export interface JsonResult {
  /** The parsed value, valid against the schema. */
  json: unknown;
  /** The exact JSON text the model produced. */
  raw: string;
  finishReason: FinishReason;
  usage: Usage;
  timings: GenerationTimings;
}

export interface Phi3Result {
  proposal: TradeProposal;
  raw: string;
  finishReason: FinishReason;
  usage: Usage;
  timings: GenerationTimings;
}

export interface Phi3Runtime {
  readonly modelName: string;
  readonly device: { kind: "cuda" | "cpu"; name?: string };
  generate(input: Phi3GenerateInput, signal: AbortSignal): Promise<Phi3Result>;
  /** Structured output for any schema of the subset (runtimes without it answer 503). */
  generateJson?(input: JsonGenerateInput, signal: AbortSignal): Promise<JsonResult>;
  dispose(): Promise<void>;
}

/**
 * An expected failure with its public code and HTTP status. The service maps it to the error
 * envelope; anything else thrown is a bug (500, logged with its stack, never sent).
 */
export class GpuNodeError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: 400 | 401 | 404 | 408 | 413 | 422 | 429 | 499 | 503 | 504,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "GpuNodeError";
  }
}

/** Which device a runtime should use. "auto": CUDA when present, else CPU. A requested "cuda"
 * that cannot be used is a load error, never a silent CPU fallback. */
export type DeviceChoice = "auto" | "cpu" | "cuda";

export interface HermesOptions {
  /** A GGUF file. */
  modelPath: string;
  /** Context window in tokens (HERMES_CTX, default 6144, the seed's). */
  contextSize: number;
  gpu: DeviceChoice;
  /** Context sequences, i.e. generations that can run at once (HERMES_PARALLEL, default 1). */
  parallel: number;
  /** CPU threads (HERMES_THREADS). 0 = llama.cpp's default, which oversubscribes small machines. */
  threads: number;
}

export interface Phi3Options {
  /** A folder as published by onnxruntime-genai (genai_config.json, model .onnx, tokenizer). */
  modelDir: string;
  device: DeviceChoice;
  /** Intra-op CPU threads for ONNX Runtime (PHI3_THREADS); 0 = ONNX Runtime's default. */
  threads: number;
}
