/**
 * The sampler as shipped before the fast one (commit 90fb0f6, gpu-node/phi3/sampler.ts): a
 * closure per allowed id check, `Math.exp` over every allowed logit, a full sort for top-p and
 * fresh arrays each step. Kept only so the benchmark can measure before and after in one run.
 */
export function previousSampler(
  logits: Float32Array,
  limit: number,
  allowed: ((id: number) => boolean) | undefined,
  params: { temperature: number; topP: number },
  random: () => number,
): { next(): number | undefined } {
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
