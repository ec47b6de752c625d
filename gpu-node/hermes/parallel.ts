/**
 * How many sequences Hermes batches in its one context when HERMES_PARALLEL=auto: as many as the
 * KV-cache budget holds (each sequence keeps a whole context of cache), at least 1 and at most 4,
 * and on a GPU never more than its free VRAM (less a margin for compute buffers) can take.
 */
const MIB = 2 ** 20;
/** Default KV budgets, MiB: on a GPU, two 6144-token sequences of the 8B model (768 MiB each). */
export const DEFAULT_KV_BUDGET_MIB = { gpu: 2048, cpu: 1024 } as const;
export const AUTO_PARALLEL_MAX = 4;
/** VRAM left for llama.cpp's compute buffers and the CUDA context when sizing from free VRAM. */
const VRAM_MARGIN_BYTES = 512 * MIB;

export interface ParallelInput {
  requested: number | "auto";
  /** Tokens per sequence. */
  contextSize: number;
  kvBytesPerToken: number;
  onGpu: boolean;
  /** HERMES_KV_BUDGET_MIB; undefined = DEFAULT_KV_BUDGET_MIB for the device. */
  kvBudgetMiB?: number;
  /** Free VRAM after the weights loaded, when known. */
  vramFreeBytes?: number;
}

export function hermesParallel(input: ParallelInput): number {
  if (input.requested !== "auto") return input.requested;
  const perSequence = input.contextSize * input.kvBytesPerToken;
  const budget =
    (input.kvBudgetMiB ?? (input.onGpu ? DEFAULT_KV_BUDGET_MIB.gpu : DEFAULT_KV_BUDGET_MIB.cpu)) *
    MIB;
  let count = Math.floor(budget / perSequence);
  if (input.onGpu && input.vramFreeBytes !== undefined) {
    count = Math.min(count, Math.floor((input.vramFreeBytes - VRAM_MARGIN_BYTES) / perSequence));
  }
  return Math.max(1, Math.min(AUTO_PARALLEL_MAX, count));
}
