/**
 * The Phi-3 engine's types: its options, parts and counters, and its queued and running
 * requests.
 */
import type { Phi3Constraint } from "../runtime.ts";
import type { OnnxDecoder } from "./decoder.ts";
import type { Phi3ModelConfig } from "./folder.ts";
import type { RawGeneration, Sequence, SequenceSetup } from "./sequence.ts";
import type { PromptTokenizer, Vocabulary } from "./vocab.ts";
import type { XGrammar } from "./xgrammar.ts";

export interface GenerateOptions {
  /** false: no grammar mask and no budget plan, stop at an EOS id or the budget (for the
   * benchmark's comparison; the result may not be JSON). Default true. */
  constrained?: boolean;
  /** false: recompute the whole sequence every step instead of using the KV cache (a
   * correctness reference; such a sequence runs alone, outside the batch). Default true. */
  kvCache?: boolean;
}

export interface EngineParts {
  config: Phi3ModelConfig;
  decoder: OnnxDecoder;
  tokenizer: PromptTokenizer;
  vocabulary: Vocabulary;
  xgrammar: XGrammar;
  /** The trade schema's constraint, used when a request brings none. */
  constraint: Phi3Constraint;
  /** Rows of a decode step. */
  parallel: number;
  /** Cache positions the batch may hold, rows × the longest row's prompt + max_length
   * (PHI3_KV_TOKENS): what bounds the KV cache's memory, on the card or in RAM. */
  kvTokens?: number;
}

export interface Request {
  setup: SequenceSetup;
  solo: boolean;
  resolve: (result: RawGeneration) => void;
  reject: (error: unknown) => void;
  onAbort: () => void;
}

export interface Running {
  request: Request;
  sequence: Sequence;
  /** The token to feed at the next step. */
  token: number;
}

/** Counters since load: ONNX runs and the rows they carried. */
export interface EngineStats {
  /** Prefill runs (one per admitted sequence, plus the kvCache: false recomputes). */
  prefills: number;
  /** Batched decode runs. */
  steps: number;
  /** Rows over all batched decode runs (steps × rows per step). */
  stepRows: number;
  /** The most rows one decode step carried. */
  maxRows: number;
}
