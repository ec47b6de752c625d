/**
 * Seedable token sampling: greedy (temperature 0, the default) or temperature + top-p with a
 * seeded PRNG. Hand-written: mulberry32 is ten lines and a dependency would bring nothing.
 *
 * A step's choices come from `StepSampler.next()`, which draws without replacement: the budget
 * planner may refuse a token, and the next draw then comes from what is left.
 */

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
  /** Nucleus: keep the most likely tokens whose probabilities sum to at least top_p. */
  topP: number;
}

export interface StepSampler {
  /** The next choice, or undefined when no allowed token is left. */
  next(): number | undefined;
}

/**
 * Prepares one step. `allowed(id)` is the grammar's mask (all ids when undefined); ids at or past
 * `limit` are never chosen (the logits' padding past the tokenizer's vocabulary).
 */
export function createStepSampler(
  logits: Float32Array,
  limit: number,
  allowed: ((id: number) => boolean) | undefined,
  params: SamplingParams,
  random: () => number,
): StepSampler {
  const n = Math.min(limit, logits.length);
  if (params.temperature <= 0) {
    const taken = new Set<number>();
    return {
      next() {
        let best = -1;
        let bestLogit = Number.NEGATIVE_INFINITY;
        for (let id = 0; id < n; id++) {
          const l = logits[id] as number;
          if (l > bestLogit || best < 0) {
            if (taken.has(id) || (allowed && !allowed(id)) || Number.isNaN(l)) continue;
            best = id;
            bestLogit = l;
          }
        }
        if (best < 0) return undefined;
        taken.add(best);
        return best;
      },
    };
  }
  const ids: number[] = [];
  let max = Number.NEGATIVE_INFINITY;
  for (let id = 0; id < n; id++) {
    if (allowed && !allowed(id)) continue;
    const l = logits[id] as number;
    if (Number.isNaN(l)) continue;
    ids.push(id);
    if (l > max) max = l;
  }
  let weights = ids.map((id) => Math.exp(((logits[id] as number) - max) / params.temperature));
  if (params.topP < 1 && ids.length > 1) {
    const order = ids
      .map((_, i) => i)
      .sort((a, b) => (weights[b] as number) - (weights[a] as number) || a - b);
    const total = weights.reduce((a, b) => a + b, 0);
    const keep: number[] = [];
    let sum = 0;
    for (const i of order) {
      keep.push(i);
      sum += weights[i] as number;
      if (sum >= params.topP * total) break;
    }
    keep.sort((a, b) => a - b);
    const keptIds = keep.map((i) => ids[i] as number);
    weights = keep.map((i) => weights[i] as number);
    ids.length = 0;
    ids.push(...keptIds);
  }
  let total = weights.reduce((a, b) => a + b, 0);
  return {
    next() {
      if (ids.length === 0) return undefined;
      let u = random() * total;
      let pick = ids.length - 1;
      for (let i = 0; i < ids.length; i++) {
        u -= weights[i] as number;
        if (u < 0) {
          pick = i;
          break;
        }
      }
      const id = ids[pick] as number;
      total -= weights[pick] as number;
      ids.splice(pick, 1);
      weights.splice(pick, 1);
      return id;
    },
  };
}
