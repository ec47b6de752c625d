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
  /** VRAM in use by the runtime's GPU, MiB, when known. */
  vram?(): Promise<{ usedMiB: number; totalMiB: number } | undefined>;
  dispose(): Promise<void>;
}

export interface Phi3GenerateInput {
  /** The user's (augmented) prompt; the runtime applies the model's chat template. */
  prompt: string;
  maxTokens: number;
  sampling?: Sampling;
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
  /** Generations it runs at once (1 for a one-sequence engine; more when it batches). */
  readonly parallel: number;
  /** `control.onText` receives pieces of the JSON text as they are produced (when the engine
   * streams; otherwise the HTTP layer sends the whole text at the end). */
  generate(input: Phi3GenerateInput, control: GenerateControl): Promise<Phi3Result>;
  dispose(): Promise<void>;
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
}
