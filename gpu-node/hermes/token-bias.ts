/**
 * The token bias that carries xgrammar's mask to node-llama-cpp's sampler, and the bitset of
 * the tokens that write text.
 */
import { type Token, TokenBias } from "node-llama-cpp";

/** Added to the allowed tokens' logits when the bias boosts them. */
const BOOST = 1000;

/**
 * The token bias that carries a mask (and the refused tokens) to node-llama-cpp's sampler: +1000
 * logits on the allowed tokens when they are at most half the vocabulary, else "never" on the
 * others. End-of-generation tokens are left out of "never", as node-llama-cpp's own set() does,
 * so a refused one forces the boosting form, which leaves every token outside the mask at
 * probability 0.
 */
export function maskBias(
  tokenizer: ConstructorParameters<typeof TokenBias>[0],
  size: number,
  mask: Int32Array,
  textWords: Int32Array,
  banned: ReadonlySet<number>,
  stopIds: ReadonlySet<number>,
): TokenBias {
  // Allowed = in xgrammar's mask, a text token, not refused: 32 tokens per word.
  const words = new Int32Array(textWords.length);
  let count = 0;
  for (let i = 0; i < words.length; i++) {
    const w = (mask[i] ?? 0) & (textWords[i] as number);
    words[i] = w;
    count += popcount(w);
  }
  for (const id of banned) {
    const bit = 1 << (id & 31);
    if ((words[id >>> 5] as number) & bit) {
      words[id >>> 5] = (words[id >>> 5] as number) & ~bit;
      count--;
    }
  }
  const bias = new TokenBias(tokenizer);
  // TokenBias.set costs two tokenizer look-ups per token (several ms per step at 32k tokens);
  // its `_biases` map (id -> logit, what the sampler receives) is filled directly when present,
  // with the same values set() would store.
  const map = (bias as unknown as { _biases?: unknown })._biases;
  const put =
    map instanceof Map
      ? (id: number, logit: number) => map.set(id, logit)
      : (id: number, logit: number) =>
          bias.set(id as Token, logit === -Infinity ? "never" : { logit });
  const refusedStop = [...banned].some((id) => stopIds.has(id));
  const boost = refusedStop || count <= size / 2;
  for (let i = 0; i < words.length; i++) {
    // The tokens to write in this word: the allowed ones, or the others (within the vocabulary).
    let w = boost ? (words[i] as number) : ~(words[i] as number);
    const top = size - i * 32;
    if (top < 32) w &= (1 << top) - 1;
    while (w !== 0) {
      const low = w & -w;
      const id = i * 32 + 31 - Math.clz32(low);
      w ^= low;
      if (boost) put(id, BOOST);
      else if (!stopIds.has(id)) put(id, -Infinity);
    }
  }
  return bias;
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** One bit per token that writes text (the others are never allowed). */
export function textTokenWords(bytes: readonly (Uint8Array | undefined)[]): Int32Array {
  const words = new Int32Array(Math.ceil(bytes.length / 32));
  bytes.forEach((b, id) => {
    if (b !== undefined) words[id >>> 5] = (words[id >>> 5] as number) | (1 << (id & 31));
  });
  return words;
}
