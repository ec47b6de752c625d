/**
 * Hermes-3's real vocabulary is GPT-2-style byte-level BPE (`tokenizer.ggml.model` "gpt2"), not
 * the tiny model's "llama" one. This builds such a GGUF vocabulary in memory and checks that our
 * decoding of its tokens (ggufVocabulary) is xgrammar's ("byte_level"): at every step of walks
 * through a schema's language, the mask and our automaton allow the same tokens.
 */
import type { GgufFileInfo } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { ggufVocabulary } from "../../gpu-node/hermes/gguf-vocabulary.ts";
import { bitmaskAllows, loadXGrammar } from "../../gpu-node/phi3/xgrammar.ts";
import { ConstraintCache, type StateSet } from "../../gpu-node/structured/index.ts";
import { ORDER_TICKET, REASONING } from "./schemas.ts";

/** GPT-2's bytes_to_unicode, written out independently of the code under test. */
function byteChar(b: number): string {
  const printable =
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  if (printable) return String.fromCodePoint(b);
  let n = 0;
  for (let x = 0; x < b; x++) {
    const p = (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff);
    if (!p) n++;
  }
  return String.fromCodePoint(256 + n);
}
const encodeToken = (text: string) =>
  [...new TextEncoder().encode(text)].map((b) => byteChar(b)).join("");

function byteLevelFile(): { info: GgufFileInfo; texts: string[] } {
  const texts: string[] = [];
  const tokens: string[] = [];
  const types: number[] = [];
  for (let b = 0; b < 256; b++) {
    tokens.push(byteChar(b));
    types.push(1);
    texts.push(String.fromCharCode(b));
  }
  for (const t of [
    ' {"',
    '": "',
    '", "',
    '"}',
    "true",
    " null",
    "é",
    "日本",
    "📈",
    "12",
    "0.",
    "buy",
    ' "',
    "\n",
    "symbol",
    "quantity",
    "steps",
    "explanation",
    '\\"',
    "ab",
    " the",
  ]) {
    tokens.push(encodeToken(t));
    types.push(1);
    texts.push(t);
  }
  for (const special of ["<|begin_of_text|>", "<|im_end|>"]) {
    tokens.push(special);
    types.push(3);
    texts.push("");
  }
  const info = {
    metadata: { tokenizer: { ggml: { model: "gpt2", tokens, token_type: types } } },
  } as unknown as GgufFileInfo;
  return { info, texts };
}

describe("byte-level (gpt2) GGUF vocabularies", () => {
  it("decode to the tokens' bytes; control tokens are never text", () => {
    const { info, texts } = byteLevelFile();
    const vocab = ggufVocabulary(info);
    expect(vocab.kind).toBe("byte_level");
    const decoder = new TextDecoder();
    for (let id = 256; id < texts.length - 2; id++) {
      expect(decoder.decode(vocab.bytes[id] as Uint8Array)).toBe(texts[id]);
    }
    for (let b = 0; b < 256; b++) expect([...(vocab.bytes[b] as Uint8Array)]).toEqual([b]);
    expect(vocab.bytes.at(-1)).toBeUndefined();
    expect(vocab.encoded.at(-1)).toBe("");
    expect(vocab.controlIds).toEqual([texts.length - 2, texts.length - 1]);
  });

  it("xgrammar's masks and our automaton agree on it", { timeout: 120_000 }, async () => {
    const { info: file } = byteLevelFile();
    const vocab = ggufVocabulary(file);
    const xg = await loadXGrammar();
    const size = vocab.encoded.length;
    const info = await xg.TokenizerInfo.createTokenizerInfo(
      [...vocab.encoded],
      "byte_level",
      false,
      size,
      [size - 1],
    );
    const cache = new ConstraintCache({ xgrammar: xg, tokenizerInfo: info, vocabulary: vocab });
    let steps = 0;
    let seed = 5;
    for (const schema of [ORDER_TICKET, REASONING]) {
      const lease = await cache.lease(schema);
      const { grammar, nfa, planner } = lease.constraint;
      for (let walk = 0; walk < 4; walk++) {
        const matcher = await xg.GrammarMatcher.createGrammarMatcher(grammar);
        let state: StateSet = nfa.initial();
        for (let step = 0; step < 300 && !nfa.isFinal(state); step++) {
          const mask = await matcher.getNextTokenBitmask();
          const ours: number[] = [];
          for (let id = 0; id < size; id++) {
            const bytes = vocab.bytes[id];
            const mine = bytes !== undefined && nfa.advance(state, bytes) !== undefined;
            if (mine) ours.push(id);
            const theirs = bitmaskAllows(mask, id);
            // xgrammar lets malformed UTF-8 bytes through as single-byte tokens; nothing else.
            if (theirs && !mine) expect(id < 256 && id >= 0x80, `token ${id}`).toBe(true);
            if (mine && !theirs) expect.fail(`xgrammar refuses token ${id} (${vocab.encoded[id]})`);
          }
          steps++;
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          const id =
            step > 40
              ? (planner.plan(state).tokens[0] as number)
              : (ours[seed % ours.length] as number);
          expect(matcher.acceptToken(id)).toBe(true);
          state = nfa.advance(state, vocab.bytes[id] as Uint8Array) as StateSet;
        }
        expect(nfa.isFinal(state)).toBe(true);
        matcher.dispose();
      }
      lease.release();
    }
    await cache.dispose();
    info.dispose();
    expect(steps).toBeGreaterThan(100);
  });
});
