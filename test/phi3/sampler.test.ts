import { describe, expect, it } from "vitest";
import {
  maskAllows,
  mulberry32,
  type SamplingParams,
  TokenSampler,
} from "../../gpu-node/phi3/sampler.ts";

const params = (p: Partial<SamplingParams>): SamplingParams => ({
  temperature: 1,
  topK: 0,
  topP: 1,
  ...p,
});

function maskOf(n: number, allowed: (id: number) => boolean): Int32Array {
  const mask = new Int32Array(Math.ceil(n / 32));
  for (let id = 0; id < n; id++)
    if (allowed(id)) mask[id >>> 5] = (mask[id >>> 5] as number) | (1 << (id & 31));
  return mask;
}

/** Every id one step can give, in draw order (draws without replacement until none is left). */
function exhaust(sampler: TokenSampler): number[] {
  const out: number[] = [];
  for (let id = sampler.next(); id !== undefined; id = sampler.next()) out.push(id);
  return out;
}

/** The reference: softmax at T (tokens under e^-30 of the best dropped, as documented), then
 * top-k, then the nucleus, by a full sort (ties: lower id). */
function reference(logits: Float32Array, allowed: (id: number) => boolean, p: SamplingParams) {
  const allowedIds = [...logits.keys()].filter((id) => allowed(id));
  const max = Math.max(...allowedIds.map((id) => logits[id] as number));
  const ids = allowedIds.filter((id) => ((logits[id] as number) - max) / p.temperature >= -30);
  const weight = new Map(
    ids.map((id) => [id, Math.exp(((logits[id] as number) - max) / p.temperature)]),
  );
  let order = ids.sort((a, b) => (weight.get(b) as number) - (weight.get(a) as number) || a - b);
  if (p.topK > 0) order = order.slice(0, p.topK);
  if (p.topP < 1) {
    const total = order.reduce((s, id) => s + (weight.get(id) as number), 0);
    let sum = 0;
    const keep: number[] = [];
    for (const id of order) {
      keep.push(id);
      sum += weight.get(id) as number;
      if (sum >= p.topP * total) break;
    }
    order = keep;
  }
  const total = order.reduce((s, id) => s + (weight.get(id) as number), 0);
  return new Map(order.map((id) => [id, (weight.get(id) as number) / total]));
}

function frequencies(logits: Float32Array, p: SamplingParams, draws: number, mask?: Int32Array) {
  const sampler = new TokenSampler(logits.length);
  const random = mulberry32(12345);
  const counts = new Map<number, number>();
  for (let i = 0; i < draws; i++) {
    sampler.prepare(logits, logits.length, mask, p, random);
    const id = sampler.next() as number;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return new Map([...counts].map(([id, c]) => [id, c / draws]));
}

const small = Float32Array.from([0.5, 2, 1, 3, -1, 2.5, 0, 1.5]);

describe("sampler", () => {
  it("mulberry32 is a deterministic stream in [0, 1) per seed", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBeGreaterThan(990);
    expect(mulberry32(43)()).not.toBe(xs[0]);
  });

  it("greedy is the argmax of the allowed ids (ties: the lowest id), then the next best, without the PRNG", () => {
    const logits = Float32Array.from([1, 5, 5, 2, Number.NaN, 4, 9, 3]);
    const sampler = new TokenSampler(8);
    const never = () => {
      throw new Error("greedy must not draw");
    };
    sampler.prepare(
      logits,
      8,
      maskOf(8, (id) => id !== 6),
      params({ temperature: 0 }),
      never,
    );
    expect(exhaust(sampler)).toEqual([1, 2, 5, 7, 3, 0]);
    // The limit cuts the logits' padding; top_k 1 is greedy too.
    sampler.prepare(logits, 6, undefined, params({ topK: 1 }), never);
    expect(sampler.next()).toBe(1);
  });

  it("frequencies follow softmax at the temperature (seeded, 40,000 draws)", () => {
    for (const temperature of [1, 0.5, 2]) {
      const want = reference(small, () => true, params({ temperature }));
      const got = frequencies(small, params({ temperature }), 40_000);
      for (const [id, p] of want) expect(Math.abs((got.get(id) ?? 0) - p)).toBeLessThan(0.01);
    }
  });

  it("top-k and top-p keep exactly the reference's candidates, with its renormalized odds", () => {
    for (const p of [
      params({ topK: 3 }),
      params({ topP: 0.5 }),
      params({ topP: 0.9, temperature: 0.7 }),
      params({ topK: 5, topP: 0.8 }),
    ]) {
      const want = reference(small, () => true, p);
      const got = frequencies(small, p, 40_000);
      expect(new Set(got.keys()), JSON.stringify(p)).toEqual(new Set(want.keys()));
      for (const [id, q] of want) expect(Math.abs((got.get(id) ?? 0) - q)).toBeLessThan(0.01);
    }
  });

  it("on 32,064 logits with a grammar mask, the candidate set is the sorted reference's", () => {
    const n = 32_064;
    const random = mulberry32(7);
    for (let trial = 0; trial < 6; trial++) {
      // Peaked like a real model (a few strong tokens, a long tail); odd trials quantized to
      // quarters, so that many logits tie (as float16 logits do).
      const logits = Float32Array.from({ length: n }, () => {
        const x = random() ** 6 * 20 - 5;
        return trial % 2 ? Math.round(x * 4) / 4 : x;
      });
      const allowedFn = (id: number) => id % 7 !== trial && id < 32_011;
      const mask = maskOf(n, allowedFn);
      const p = params({
        temperature: [0.8, 1, 0.33][trial % 3] as number,
        topK: trial % 2 ? 0 : 200,
        topP: [0.9, 0.5, 1][trial % 3] as number,
      });
      const sampler = new TokenSampler(n);
      sampler.prepare(logits, 32_011, mask, p, mulberry32(trial));
      const drawn = exhaust(sampler);
      const want = reference(logits, allowedFn, p);
      expect(drawn.length).toBe(new Set(drawn).size);
      for (const id of drawn) expect(maskAllows(mask, id)).toBe(true);
      if (trial % 2 === 0) expect(new Set(drawn)).toEqual(new Set(want.keys()));
      else {
        // With ties at the cut, which of the tied ids make it is arbitrary; how many is not, and
        // every id above the cut's value is in.
        expect(drawn.length).toBe(want.size);
        const cut = Math.min(...drawn.map((id) => logits[id] as number));
        for (const id of want.keys()) if ((logits[id] as number) > cut) expect(drawn).toContain(id);
      }
    }
  });

  it("draws without replacement, honours the mask and the limit, and is reproducible per seed", () => {
    const sampler = new TokenSampler(0);
    const mask = maskOf(8, (id) => id % 2 === 1);
    sampler.prepare(small, 6, mask, params({ temperature: 1.5 }), mulberry32(1));
    expect(exhaust(sampler).sort()).toEqual([1, 3, 5]);
    const run = (seed: number) => {
      const random = mulberry32(seed);
      return Array.from({ length: 50 }, () => {
        sampler.prepare(small, 8, undefined, params({}), random);
        return sampler.next();
      });
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it("low temperature concentrates on the best token", () => {
    const got = frequencies(small, params({ temperature: 0.05 }), 300);
    expect(got.get(3)).toBeGreaterThan(0.96);
  });
});
