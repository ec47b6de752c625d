/** The token bias that carries xgrammar's mask to node-llama-cpp's sampler (Hermes). */
import type { TokenBias } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { maskBias, textTokenWords } from "../../gpu-node/hermes/token-bias.ts";

const tokenizer = Object.assign(() => [], { isEogToken: () => false }) as unknown as Parameters<
  typeof maskBias
>[0];
const biases = (bias: TokenBias) =>
  [...(bias as unknown as { _biases: Map<number, number> })._biases].sort((a, b) => a[0] - b[0]);

function maskOf(size: number, allowed: number[]): Int32Array {
  const mask = new Int32Array(Math.ceil(size / 32));
  for (const id of allowed) mask[id >>> 5] = (mask[id >>> 5] as number) | (1 << (id & 31));
  return mask;
}

describe("maskBias", () => {
  const size = 70; // three words, the last one partial
  const bytes = Array.from({ length: size }, (_, id) => (id === 5 ? undefined : Uint8Array.of(id)));
  const text = textTokenWords(bytes);

  it("boosts the allowed text tokens when they are the smaller side", () => {
    const bias = maskBias(
      tokenizer,
      size,
      maskOf(size, [1, 5, 33, 69]),
      text,
      new Set([33]),
      new Set(),
    );
    // 5 writes no text, 33 was refused.
    expect(biases(bias)).toEqual([
      [1, 1000],
      [69, 1000],
    ]);
  });

  it("bans the others when most tokens are allowed, never an end-of-generation token", () => {
    const all = Array.from({ length: size }, (_, id) => id).filter((id) => id !== 40);
    const bias = maskBias(tokenizer, size, maskOf(size, all), text, new Set(), new Set([0]));
    expect(biases(bias)).toEqual([
      [5, -Infinity],
      [40, -Infinity],
    ]);
    // A refused end token forces boosting (it cannot be banned).
    const refused = maskBias(tokenizer, size, maskOf(size, all), text, new Set([0]), new Set([0]));
    expect(biases(refused).length).toBe(size - 3);
    expect(biases(refused).every(([, v]) => v === 1000)).toBe(true);
  });
});
