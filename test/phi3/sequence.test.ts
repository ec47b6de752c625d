/**
 * One batched-engine sequence (phi3/sequence.ts) under a request's own constraint, with logits
 * written by hand: an end-of-text id ends the output only where the value may end (a number at
 * the root could go on, so isFinal never comes), and is refused anywhere else.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPhi3Folder } from "../../gpu-node/phi3/folder.ts";
import { createTokenizerInfo } from "../../gpu-node/phi3/index.ts";
import { TokenSampler } from "../../gpu-node/phi3/sampler.ts";
import { Sequence, type SequenceSetup } from "../../gpu-node/phi3/sequence.ts";
import { buildVocabulary, type Vocabulary } from "../../gpu-node/phi3/vocab.ts";
import { loadXGrammar, type TokenizerInfo, type XGrammar } from "../../gpu-node/phi3/xgrammar.ts";
import { ConstraintCache, type ConstraintLease } from "../../gpu-node/structured/index.ts";
import { makeTinyFolder, type TinyFolder } from "./helpers.ts";

describe("Sequence: end-of-text under a request's constraint", () => {
  let folder: TinyFolder;
  let vocabulary: Vocabulary;
  let info: TokenizerInfo;
  let xgrammar: XGrammar;
  let cache: ConstraintCache;
  let lease: ConstraintLease;
  let eos: number;
  let size: number;
  beforeAll(async () => {
    folder = await makeTinyFolder(3);
    const phi3 = await readPhi3Folder(folder.dir);
    size = phi3.config.vocabSize;
    vocabulary = buildVocabulary(phi3.tokenizerJson, size);
    xgrammar = await loadXGrammar();
    info = await createTokenizerInfo(xgrammar, vocabulary, phi3.config);
    eos = phi3.config.eosIds[0] as number;
    cache = new ConstraintCache({ xgrammar, tokenizerInfo: info, vocabulary });
    lease = await cache.lease({ type: "integer", minimum: 0, maximum: 99 });
  });
  afterAll(async () => {
    lease?.release();
    await cache?.dispose();
    info?.dispose();
    await folder?.remove();
  });

  const idOf = (text: string) => {
    const id = vocabulary.bytes.findIndex(
      (b) => b !== undefined && new TextDecoder().decode(b) === text,
    );
    if (id < 0) throw new Error(`no token for ${text}`);
    return id;
  };

  /** Logits that rank `ids` first, in that order. */
  const ranking = (...ids: number[]) => {
    const logits = new Float32Array(size).fill(-10);
    ids.forEach((id, i) => {
      logits[id] = 10 - i;
    });
    return logits;
  };

  const start = (budget: number) => {
    const pieces: string[] = [];
    const setup: SequenceSetup = {
      prompt: [1],
      budget,
      constraint: lease.constraint,
      params: { temperature: 0, topK: 0, topP: 1 },
      random: () => 0.5,
      control: { signal: new AbortController().signal, onText: (p) => pieces.push(p) },
      vocabulary,
      textLimit: size,
      stopIds: new Set([eos]),
      sampler: new TokenSampler(size),
    };
    return { pieces, sequence: Sequence.create(setup, xgrammar) };
  };

  it("refuses the end id before any digit, accepts it after one", async () => {
    const five = idOf("5");
    const { pieces, sequence: created } = start(10);
    const sequence = await created;
    // The model wants to stop at once: nothing is a value yet, so a digit comes instead.
    expect(await sequence.advance(ranking(eos, five))).toBe(five);
    // Now "5" is a whole integer: the end id ends it (the value could go on: "55").
    expect(await sequence.advance(ranking(eos, five))).toBeUndefined();
    const result = sequence.finish();
    expect(result.raw).toBe("5");
    expect(result.finishReason).toBe("stop");
    expect(result.tokens).toEqual([five]);
    expect(pieces.join("")).toBe("5");
  });

  it("without an end id, the plan closes the value within the budget", async () => {
    const five = idOf("5");
    const { sequence: created } = start(2);
    const sequence = await created;
    expect(await sequence.advance(ranking(five))).toBe(five);
    // One token left: "55" still fits, then the budget is spent.
    const next = await sequence.advance(ranking(five));
    expect(next).toBeUndefined();
    const result = sequence.finish();
    expect(JSON.parse(result.raw)).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(result.raw)).toBeLessThanOrEqual(99);
    expect(result.tokens.length).toBeLessThanOrEqual(2);
  });
});
