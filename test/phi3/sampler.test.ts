import { describe, expect, it } from "vitest";
import { createStepSampler, mulberry32 } from "../../gpu-node/phi3/sampler.ts";

const logits = Float32Array.from([0.5, 2, 1, 3, -1, 2.5, 0, 1.5]);
const draws = (seed: number, temperature: number, topP = 1, steps = 200) => {
  const random = mulberry32(seed);
  return Array.from({ length: steps }, () =>
    createStepSampler(logits, logits.length, undefined, { temperature, topP }, random).next(),
  );
};

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

  it("the same seed gives the same tokens; another seed other tokens", () => {
    expect(draws(7, 1)).toEqual(draws(7, 1));
    expect(draws(7, 1)).not.toEqual(draws(8, 1));
  });

  it("greedy picks the best allowed token, then the next best, and ignores the PRNG", () => {
    const s = createStepSampler(
      logits,
      logits.length,
      (id) => id !== 3,
      { temperature: 0, topP: 1 },
      () => {
        throw new Error("greedy must not draw");
      },
    );
    expect([s.next(), s.next(), s.next()]).toEqual([5, 1, 7]);
  });

  it("never picks masked ids or ids past the limit, and draws without replacement", () => {
    const s = createStepSampler(
      logits,
      6,
      (id) => id % 2 === 1,
      { temperature: 1.5, topP: 1 },
      mulberry32(1),
    );
    const picked = [s.next(), s.next(), s.next(), s.next()];
    expect(picked.slice(0, 3).sort()).toEqual([1, 3, 5]);
    expect(picked[3]).toBeUndefined();
  });

  it("top_p keeps only the nucleus", () => {
    // Softmax at T=1: id 3 has ~40%, id 5 ~24%, id 1 ~15%: top_p 0.5 keeps {3, 5}.
    expect(new Set(draws(3, 1, 0.5, 300))).toEqual(new Set([3, 5]));
    expect(new Set(draws(3, 1, 1, 300)).size).toBeGreaterThan(4);
  });

  it("low temperature concentrates on the best token", () => {
    const counts = draws(9, 0.05, 1, 300).filter((id) => id === 3).length;
    expect(counts).toBeGreaterThan(290);
  });
});
