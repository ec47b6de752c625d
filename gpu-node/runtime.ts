/**
 * The small interfaces between the GPU node's HTTP layer and its two model runtimes.
 *
 * The HTTP layer (app.ts, routes/) and the scheduler only know these; hermes/ and phi3/
 * implement them. Tests swap in real-but-tiny models, or a scripted runtime for scheduler and
 * abort tests. Expected failures are the contract's ServiceError (contract/errors.ts).
 */
import type {
  ChatMessage,
  FinishReason,
  Sampling,
  TradeProposal,
  Usage,
} from "./contract/index.ts";
import type { CompiledGrammar } from "./phi3/xgrammar.ts";
import type { BudgetPlanner } from "./structured/budget.ts";
import type { ByteNfa } from "./structured/byte-nfa.ts";

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

/** What a caller hands a generation besides its input: `generate(input, control)`. */
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
  /** A single user turn. Exactly one of `prompt` and `messages`. */
  prompt?: string;
  /** A whole conversation (system, user and assistant turns); the model answers the last. */
  messages?: ChatMessage[];
  /** The system turn when `messages` has none of its own. */
  systemPrompt: string;
  maxTokens: number;
  /** When set, maxTokens may be shortened to what the context has left, but not below this. */
  minTokens?: number;
  /** Strings that end the generation; the text stops before the first one produced. */
  stop?: string[];
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
  /** Generations it runs at once, batched (its context sequences); the scheduler admits this
   * many and never more. */
  readonly parallel: number;
  generate(input: HermesGenerateInput, control: GenerateControl): Promise<HermesResult>;
  /** Structured output for any schema of the subset (runtimes without it answer 503). */
  generateJson?(input: JsonGenerateInput, control: GenerateControl): Promise<JsonResult>;
  /** VRAM in use by the runtime's GPU, MiB, when known. */
  vram?(): Promise<{ usedMiB: number; totalMiB: number } | undefined>;
  dispose(): Promise<void>;
}

/** What a Phi-3 generation must satisfy: xgrammar's compiled grammar (the token masks), the
 * same language as a byte NFA and its budget planner (how to close in time). */
export interface Phi3Constraint {
  grammar: CompiledGrammar;
  nfa: ByteNfa;
  planner: BudgetPlanner;
}

export interface Phi3GenerateInput {
  /** The user's (augmented) prompt; the runtime applies the model's chat template. It is text:
   * control-token lookalikes in it are tokenized as characters. */
  prompt: string;
  maxTokens: number;
  sampling?: Sampling;
  /** Another language than the trade schema's (a compiled JSON Schema of the subset,
   * gpu-node/structured/; only for `generateRaw`, the default is the trade schema's, compiled at
   * load). The caller owns it and frees it after its generations. */
  constraint?: Phi3Constraint;
}

/** A generation's text before any parsing: always valid in its constraint's language. */
export interface Phi3RawResult {
  raw: string;
  tokens: number[];
  finishReason: "stop" | "length";
  usage: Usage;
  timings: GenerationTimings;
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
  /** Sequences decoded together (PHI3_PARALLEL): concurrent calls up to this many share each
   * decode step; more wait inside the runtime for a free row. */
  readonly parallel: number;
  /** A trade proposal (the trade schema's constraint; `input.constraint` must be unset). */
  generate(input: Phi3GenerateInput, control: GenerateControl): Promise<Phi3Result>;
  /** The raw text in `input.constraint`'s language (default: the trade schema's), unparsed. */
  generateRaw(input: Phi3GenerateInput, control: GenerateControl): Promise<Phi3RawResult>;
  /** Structured output for any schema of the subset (runtimes without it answer 503). */
  generateJson?(input: JsonGenerateInput, control: GenerateControl): Promise<JsonResult>;
  readonly disposed: boolean;
  /** Idempotent; waits for the generations in flight. Later calls fail with model_not_loaded. */
  dispose(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
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
  /** Context sequences, i.e. generations batched at once (HERMES_PARALLEL); "auto" derives it
   * from the context size and the memory budget (see hermes/parallel.ts). */
  parallel: number | "auto";
  /** Memory the KV caches of all sequences may take, MiB, for "auto" (HERMES_KV_BUDGET_MIB);
   * undefined = the default for the device. */
  kvBudgetMiB?: number;
  /** CPU threads (HERMES_THREADS). 0 = llama.cpp's default, which oversubscribes small machines. */
  threads: number;
}

export interface Phi3Options {
  /** A folder as published by onnxruntime-genai (genai_config.json, model .onnx, tokenizer). */
  modelDir: string;
  device: DeviceChoice;
  /** Intra-op CPU threads for ONNX Runtime (PHI3_THREADS); 0 = ONNX Runtime's default. */
  threads: number;
  /** Sequences decoded together in one ONNX run per step (PHI3_PARALLEL, default 4). */
  parallel?: number;
  /** Cache positions one batch may hold (PHI3_KV_TOKENS): rows × the longest row's prompt +
   * max_length. Unset: no bound beyond parallel × the model's context. */
  kvTokens?: number;
}
