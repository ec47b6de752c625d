/**
 * The GPU node's worst-case VRAM, computed from the model files' shapes and the settings, before
 * anything is loaded: shown at start-up in the log and in `/v1/health` (`vram_plan`), compared
 * with the VRAM watchdog's threshold, and checked against the card (or VRAM_BUDGET_MIB).
 *
 * Pure arithmetic: the inputs (shapes read from the GGUF header and genai_config.json, file sizes,
 * the card's memory) are gathered by `vram-inputs.ts`. Every item carries the formula it used, so
 * an operator can check it; numbers are MiB (nvidia-smi's unit), rounded up.
 */

const MIB = 1024 * 1024;

/** Hermes (llama.cpp) shapes, from the GGUF metadata. */
export interface HermesShape {
  /** The GGUF file's size: its tensors are what llama.cpp uploads (an upper bound). */
  fileBytes: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** attention.key_length, or embedding_length / head_count. */
  headDim: number;
  embd: number;
  ff: number;
  vocab: number;
}

/** Phi-3 (ONNX Runtime) shapes, from genai_config.json and the folder's files. */
export interface Phi3Shape {
  /** model.onnx + its external data. */
  fileBytes: number;
  layers: number;
  kvHeads: number;
  headDim: number;
  /** hidden_size (0 when genai_config does not say). */
  hidden: number;
  vocab: number;
  /** The most tokens one generation can hold (prompt + output). */
  contextLength: number;
  /** Bytes per KV-cache and activation element: 2 for the fp16 CUDA export, 4 for fp32. */
  elementBytes: 2 | 4;
}

export interface VramPlanInput {
  /** Hermes when it will run on the GPU (absent: on the CPU, disabled, or its file unreadable). */
  hermes?: { shape: HermesShape; contextSize: number; parallel: number };
  /** Phi-3 when it will run on the GPU. */
  /** kvTokens: cache positions one batch may hold (PHI3_KV_TOKENS); unset = one context. */
  phi3?: { shape: Phi3Shape; kvTokens?: number };
  /** Models that would run on the GPU but whose shapes could not be read (with why). */
  unknown?: string[];
  /** What the plan must fit: VRAM_BUDGET_MIB, else the card's total; absent = no check. */
  budget?: { mib: number; source: "VRAM_BUDGET_MIB" | "card" };
  /** The VRAM watchdog restarts the GPU container above this (WATCHDOG_THRESHOLD_MIB). */
  watchdogThresholdMiB: number;
}

export interface VramItem {
  item: string;
  mib: number;
  basis: string;
}

export interface VramPlan {
  items: VramItem[];
  total_mib: number;
  /** False when a model that runs on the GPU could not be measured (see `unknown`). */
  complete: boolean;
  unknown?: string[];
  budget_mib?: number;
  budget_source?: "VRAM_BUDGET_MIB" | "card";
  /** null without a budget. */
  fits_budget: boolean | null;
  watchdog_threshold_mib: number;
  under_watchdog_threshold: boolean;
}

/** llama.cpp's micro-batch (n_ubatch) unless the context is smaller. */
export const LLAMA_UBATCH = 512;
/** llama.cpp keeps its KV cache in f16 by default. */
const F16 = 2;
const F32 = 4;
/**
 * Not derivable from shapes: the CUDA context of the process plus the kernels and workspaces of
 * the libraries both runtimes load (cuBLAS, cuDNN, ggml-cuda). An allowance, to be replaced by a
 * measurement on the card (nvidia-smi with both models loaded and idle, minus the items above).
 */
export const CUDA_RUNTIME_ALLOWANCE_MIB = 512;

const mib = (bytes: number) => Math.ceil(bytes / MIB);
const fmt = (n: number) => n.toLocaleString("en-US");

function nextPowerOfTwo(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

/** Items of Hermes on llama.cpp (CUDA), worst case: every sequence full. */
export function hermesItems(h: NonNullable<VramPlanInput["hermes"]>): VramItem[] {
  const s = h.shape;
  const cells = h.contextSize * h.parallel;
  const ubatch = Math.min(LLAMA_UBATCH, cells);
  const kvPerToken = s.layers * s.kvHeads * s.headDim * 2 * F16;
  const logits = s.vocab * ubatch * F32;
  // node-llama-cpp's flashAttention "auto" turns flash attention on where the backend has it (CUDA
  // does for these head sizes), so the attention scores are never materialized as a whole.
  const activations = (4 * s.embd + 2 * s.ff) * ubatch * F32;
  return [
    {
      item: "hermes_weights",
      mib: mib(s.fileBytes),
      basis: `GGUF file, ${fmt(s.fileBytes)} bytes`,
    },
    {
      item: "hermes_kv_cache",
      mib: mib(kvPerToken * cells),
      basis:
        `${fmt(h.contextSize)} tokens (HERMES_CTX) x ${h.parallel} (HERMES_PARALLEL) x ${s.layers} layers` +
        ` x ${s.kvHeads} KV heads x ${s.headDim} x 2 (K, V) x 2 B (f16)`,
    },
    {
      item: "hermes_compute_buffers",
      mib: mib(logits + activations),
      basis:
        `micro-batch of ${ubatch}: logits ${fmt(s.vocab)} x ${ubatch} x 4 B + activations` +
        ` (4 x ${s.embd} + 2 x ${s.ff}) x ${ubatch} x 4 B (flash attention: no score matrix)`,
    },
  ];
}

/**
 * Items of Phi-3 on ONNX Runtime's CUDA provider, worst case: the last step of a full context.
 * onnxruntime-node has no IO binding for CUDA (facts.md), so each step's past K/V is copied up as
 * an input while the present K/V (one token longer) is allocated as an output: both are on the
 * card at once, in ONNX Runtime's arena, which keeps what it grew to and extends itself to the
 * next power of two (kNextPowerOfTwo).
 */
export function phi3Items(p: NonNullable<VramPlanInput["phi3"]>): VramItem[] {
  const s = p.shape;
  const kvPerToken = s.layers * s.kvHeads * s.headDim * 2 * s.elementBytes;
  // The batch holds at most kvTokens positions (rows × the longest row), one request at most
  // the smaller of that and the model's context.
  const cells = p.kvTokens ?? s.contextLength;
  const longest = Math.min(cells, s.contextLength);
  const kv = 2 * kvPerToken * cells;
  // A prefill of the longest prompt: its logits, and a few hidden-size activations per token.
  const logits = s.vocab * longest * s.elementBytes;
  const activations = 4 * s.hidden * longest * s.elementBytes;
  const dynamicMiB = mib(kv) + mib(logits + activations);
  return [
    {
      item: "phi3_weights",
      mib: mib(s.fileBytes),
      basis: `model.onnx + data, ${fmt(s.fileBytes)} bytes`,
    },
    {
      item: "phi3_kv_cache",
      mib: mib(kv),
      basis:
        `past + present on the card together: 2 x ${fmt(cells)} positions (PHI3_KV_TOKENS) x ${s.layers} layers` +
        ` x ${s.kvHeads} KV heads x ${s.headDim} x 2 (K, V) x ${s.elementBytes} B`,
    },
    {
      item: "phi3_activations",
      mib: mib(logits + activations),
      basis:
        `prefill of ${fmt(longest)} tokens: logits x ${fmt(s.vocab)} + 4 x ${s.hidden}` +
        ` hidden, ${s.elementBytes} B each`,
    },
    {
      item: "onnxruntime_arena_slack",
      mib: nextPowerOfTwo(dynamicMiB) - dynamicMiB,
      basis: `arena growth to the next power of two above ${fmt(dynamicMiB)} MiB`,
    },
  ];
}

/** The plan: every item on the card, the total, and how it compares with the budget and the watchdog. */
export function planVram(input: VramPlanInput): VramPlan {
  const items = [
    ...(input.hermes ? hermesItems(input.hermes) : []),
    ...(input.phi3 ? phi3Items(input.phi3) : []),
  ];
  const unknown = input.unknown ?? [];
  if (items.length > 0 || unknown.length > 0) {
    items.push({
      item: "cuda_runtime",
      mib: CUDA_RUNTIME_ALLOWANCE_MIB,
      basis: "allowance: CUDA context, library kernels and workspaces (not derived from shapes)",
    });
  }
  const total = items.reduce((sum, i) => sum + i.mib, 0);
  return {
    items,
    total_mib: total,
    complete: unknown.length === 0,
    ...(unknown.length > 0 ? { unknown } : {}),
    ...(input.budget ? { budget_mib: input.budget.mib, budget_source: input.budget.source } : {}),
    fits_budget: input.budget ? total <= input.budget.mib : null,
    watchdog_threshold_mib: input.watchdogThresholdMiB,
    under_watchdog_threshold: total <= input.watchdogThresholdMiB,
  };
}

/** One line saying why the plan cannot run, or undefined when it fits (or nothing is checked). */
export function vramPlanRefusal(plan: VramPlan): string | undefined {
  if (plan.fits_budget !== false || plan.budget_mib === undefined) return undefined;
  const budget =
    plan.budget_source === "card" ? `the card's ${fmt(plan.budget_mib)} MiB` : "VRAM_BUDGET_MIB";
  const largest = [...plan.items]
    .sort((a, b) => b.mib - a.mib)
    .slice(0, 3)
    .map((i) => `${i.item} ${fmt(i.mib)}`)
    .join(", ");
  return (
    `the worst-case VRAM plan (${fmt(plan.total_mib)} MiB; largest: ${largest}) does not fit ${budget}: ` +
    "lower HERMES_CTX or HERMES_PARALLEL, run a model on the CPU (HERMES_GPU=cpu, PHI3_DEVICE=cpu), " +
    "or set VRAM_BUDGET_MIB (0 = no check)"
  );
}

/** The start-up log line's message. */
export function vramPlanSummary(plan: VramPlan): string {
  if (plan.items.length === 0) return "VRAM plan: nothing runs on a GPU";
  const budget =
    plan.budget_mib === undefined
      ? "no budget checked"
      : `${plan.fits_budget ? "fits" : "DOES NOT FIT"} the budget of ${fmt(plan.budget_mib)} MiB (${plan.budget_source})`;
  const watchdog = plan.under_watchdog_threshold
    ? `under the watchdog's ${fmt(plan.watchdog_threshold_mib)} MiB`
    : `ABOVE the watchdog's ${fmt(plan.watchdog_threshold_mib)} MiB: a full load may get the container restarted`;
  const partial = plan.complete ? "" : ` (incomplete: ${plan.unknown?.join("; ")})`;
  return `VRAM plan: worst case ${fmt(plan.total_mib)} MiB, ${budget}, ${watchdog}${partial}`;
}
