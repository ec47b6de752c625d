/**
 * Seedable token sampling over the grammar-masked logits: greedy (temperature 0, the default)
 * is an argmax; otherwise temperature, then top-k, then top-p (nucleus), drawn with a seeded
 * PRNG. Hand-written: mulberry32 is ten lines, and the selection has to be fast (a step's budget
 * is well under a millisecond at 32,064 logits), so there is no sort over the vocabulary: top-k
 * and top-p are partial selections (quickselect-style partitions, expected linear time) in
 * buffers the sampler reuses step after step.
 *
 * A step's choices come from `next()`, which draws without replacement: the budget planner may
 * refuse a token, and the next draw then comes from what is left of the same distribution.
 */

import { heapSelect, nucleus, selectLargest, swapAt } from "./select.ts";

/** mulberry32: a small, fast 32-bit PRNG; uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** Keep only the k most likely tokens; 0 = all. */
  topK: number;
  /** Nucleus: keep the most likely tokens whose probabilities sum to at least top_p. */
  topP: number;
}

/** Whether token `id` is allowed by a bitmask (one bit per token, 1 = allowed), xgrammar's. */
export function maskAllows(mask: Int32Array, id: number): boolean {
  return (((mask[id >>> 5] ?? 0) >>> (id & 31)) & 1) === 1;
}

/** A token whose logit is this many temperatures under the best one weighs under e^-30
 * (1e-13) of it: it cannot matter to a draw, so it is dropped before anything else. */
const NEGLIGIBLE = 30;
/** exp(-x) for x in [0, NEGLIGIBLE], tabulated at steps of 1/1024 and interpolated linearly
 * (relative error under 1.2e-7): 3-4 times cheaper than Math.exp over 32,064 logits. */
const EXP_STEPS = 1024;
const EXP_TABLE = Float64Array.from({ length: NEGLIGIBLE * EXP_STEPS + 2 }, (_, i) =>
  Math.exp(-i / EXP_STEPS),
);
/** Nucleus buckets per unit of x: the cut is found by a histogram of weights, then only the
 * bucket the cut falls in is sorted. */
const BUCKETS_PER_UNIT = 4;
const BUCKETS = NEGLIGIBLE * BUCKETS_PER_UNIT + 1;

export class TokenSampler {
  private ids: Int32Array;
  private weights: Float64Array;
  private buckets: Uint8Array;
  private readonly bucketSums = new Float64Array(BUCKETS);
  private count = 0;
  private total = 0;
  private greedy = true;
  private logits: Float32Array = new Float32Array(0);
  private limit = 0;
  private mask: Int32Array | undefined;
  private readonly taken: number[] = [];
  private random: () => number = Math.random;

  constructor(capacity = 0) {
    this.ids = new Int32Array(capacity);
    this.weights = new Float64Array(capacity);
    this.buckets = new Uint8Array(capacity);
  }

  /** Prepares a step over `logits`: ids at or past `limit` (the logits' padding past the
   * tokenizer) are never chosen, nor those `mask` forbids (all allowed when undefined). */
  prepare(
    logits: Float32Array,
    limit: number,
    mask: Int32Array | undefined,
    params: SamplingParams,
    random: () => number,
  ): void {
    const n = Math.min(limit, logits.length);
    this.logits = logits;
    this.limit = n;
    this.mask = mask;
    this.random = random;
    this.taken.length = 0;
    this.greedy = params.temperature <= 0 || params.topK === 1;
    if (this.greedy) return;
    if (this.ids.length < n) {
      this.ids = new Int32Array(n);
      this.weights = new Float64Array(n);
      this.buckets = new Uint8Array(n);
    }
    const ids = this.ids;
    const w = this.weights;
    // 1. The best logit over the whole row: an upper bound of the allowed ones' best, which
    // scales every weight alike, so the distribution is the same.
    let max = Number.NEGATIVE_INFINITY;
    for (let id = 0; id < n; id++) {
      const l = logits[id] as number;
      if (l > max) max = l;
    }
    let kept = this.collect(max, params);
    if (kept === 0 && this.anyAllowed()) {
      // Every allowed token is far below the row's best: weigh them against their own best.
      let allowedMax = Number.NEGATIVE_INFINITY;
      this.forAllowed((id) => {
        const l = logits[id] as number;
        if (l > allowedMax) allowedMax = l;
      });
      kept = this.collect(allowedMax, params);
    }
    // 3. top-k: the k heaviest (a heap pass when k is small, else a quickselect).
    if (params.topK > 0 && params.topK < kept) {
      if (params.topK <= 1024) heapSelect(ids, w, this.buckets, kept, params.topK);
      else selectLargest(ids, w, this.buckets, 0, kept, params.topK);
      kept = params.topK;
      if (params.topP < 1) {
        this.bucketSums.fill(0);
        for (let i = 0; i < kept; i++) {
          const bucket = this.buckets[i] as number;
          this.bucketSums[bucket] = (this.bucketSums[bucket] as number) + (w[i] as number);
        }
      }
    }
    let total = 0;
    for (let i = 0; i < kept; i++) total += w[i] as number;
    const buckets = this.buckets;
    const sums = this.bucketSums;
    // 4. The nucleus: whole buckets up to the one the cut falls in, then that bucket sorted.
    if (params.topP < 1 && kept > 1) {
      let need = params.topP * total;
      let cut = 0;
      for (; cut < BUCKETS - 1; cut++) {
        const sum = sums[cut] as number;
        if (sum >= need) break;
        need -= sum;
      }
      // [0, inside): buckets before the cut; [inside, edge): the cut's bucket.
      let inside = 0;
      for (let i = 0; i < kept; i++) {
        if ((buckets[i] as number) < cut) swapAt(ids, w, buckets, i, inside++);
      }
      let edge = inside;
      for (let i = inside; i < kept; i++) {
        if (buckets[i] === cut) swapAt(ids, w, buckets, i, edge++);
      }
      kept = inside + nucleus(ids, w, buckets, inside, edge, need);
      total = 0;
      for (let i = 0; i < kept; i++) total += w[i] as number;
    }
    this.count = kept;
    this.total = total;
  }

  /** Adds `id` as candidate number `kept` unless negligible; returns the new count. */
  private weigh(id: number, kept: number, max: number, scale: number, histogram: boolean): number {
    const y = (max - (this.logits[id] as number)) * scale;
    // Also false for NaN.
    if (!(y <= NEGLIGIBLE * EXP_STEPS)) return kept;
    const k = y | 0;
    const e0 = EXP_TABLE[k] as number;
    const weight = e0 + (y - k) * ((EXP_TABLE[k + 1] as number) - e0);
    this.ids[kept] = id;
    this.weights[kept] = weight;
    if (histogram) {
      const bucket = (y * (BUCKETS_PER_UNIT / EXP_STEPS)) | 0;
      this.buckets[kept] = bucket;
      this.bucketSums[bucket] = (this.bucketSums[bucket] as number) + weight;
    }
    return kept + 1;
  }

  /** Calls `visit` with every allowed id below the limit, in ascending order. */
  private forAllowed(visit: (id: number) => void): void {
    const { mask, limit } = this;
    const words = Math.ceil(limit / 32);
    for (let word = 0; word < words; word++) {
      let bits = mask ? (mask[word] as number) : -1;
      const base = word * 32;
      const end = Math.min(32, limit - base);
      if (end < 32) bits &= -1 >>> (32 - end);
      while (bits !== 0) {
        visit(base + 31 - Math.clz32(bits & -bits));
        bits &= bits - 1;
      }
    }
  }

  private anyAllowed(): boolean {
    let any = false;
    this.forAllowed((id) => {
      if (!Number.isNaN(this.logits[id] as number)) any = true;
    });
    return any;
  }

  /** 2. The allowed, non-negligible ids with their weights exp((l - max) / T) from the table,
   * and a histogram of the weights by x = (max - l) / T for the nucleus. Returns their count. */
  private collect(max: number, params: SamplingParams): number {
    const { mask, limit } = this;
    if (params.topP < 1) this.bucketSums.fill(0);
    const scale = EXP_STEPS / params.temperature;
    const histogram = params.topP < 1;
    let kept = 0;
    if (!mask) {
      for (let id = 0; id < limit; id++) kept = this.weigh(id, kept, max, scale, histogram);
      return kept;
    }
    const words = Math.ceil(limit / 32);
    for (let word = 0; word < words; word++) {
      let bits = mask[word] as number;
      if (bits === 0) continue;
      const base = word * 32;
      const end = Math.min(32, limit - base);
      if (bits === -1 && end === 32) {
        for (let id = base; id < base + 32; id++)
          kept = this.weigh(id, kept, max, scale, histogram);
        continue;
      }
      if (end < 32) bits &= -1 >>> (32 - end);
      while (bits !== 0) {
        kept = this.weigh(base + 31 - Math.clz32(bits & -bits), kept, max, scale, histogram);
        bits &= bits - 1;
      }
    }
    return kept;
  }

  /** The next choice, or undefined when no allowed token is left. */
  next(): number | undefined {
    return this.greedy ? this.nextBest() : this.draw();
  }

  private nextBest(): number | undefined {
    const { logits, limit, mask, taken } = this;
    let best = -1;
    let bestLogit = Number.NEGATIVE_INFINITY;
    const words = Math.ceil(limit / 32);
    for (let word = 0; word < words; word++) {
      let bits = mask ? (mask[word] as number) : -1;
      if (bits === 0) continue;
      const base = word * 32;
      const end = Math.min(32, limit - base);
      if (end < 32) bits &= -1 >>> (32 - end);
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const id = base + bit;
        const l = logits[id] as number;
        // Ties go to the lowest id (ids ascend here); NaN never wins.
        if (l > bestLogit && !taken.includes(id)) {
          best = id;
          bestLogit = l;
        }
      }
    }
    if (best < 0) return undefined;
    taken.push(best);
    return best;
  }

  private draw(): number | undefined {
    if (this.count === 0) return undefined;
    const ids = this.ids;
    const w = this.weights;
    let u = this.random() * this.total;
    let pick = this.count - 1;
    for (let i = 0; i < this.count; i++) {
      u -= w[i] as number;
      if (u < 0) {
        pick = i;
        break;
      }
    }
    const id = ids[pick] as number;
    this.total -= w[pick] as number;
    // Without replacement: the last candidate takes the drawn one's place.
    this.count--;
    ids[pick] = ids[this.count] as number;
    w[pick] = w[this.count] as number;
    return id;
  }
}
