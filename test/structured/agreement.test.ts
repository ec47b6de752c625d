/**
 * The two views of each random schema's language agree: at every step of sampled walks, the
 * tokens xgrammar's mask allows (from our EBNF) are the tokens our byte automaton accepts, on the
 * tiny Phi-3 vocabulary (multi-byte tokens), up to xgrammar's leniency about malformed UTF-8.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPhi3Folder } from "../../gpu-node/phi3/folder.ts";
import { createTokenizerInfo } from "../../gpu-node/phi3/index.ts";
import { buildVocabulary, type Vocabulary } from "../../gpu-node/phi3/vocab.ts";
import { bitmaskAllows, loadXGrammar, type TokenizerInfo } from "../../gpu-node/phi3/xgrammar.ts";
import { ConstraintCache, type StateSet } from "../../gpu-node/structured/index.ts";
import { makeTinyFolder, type TinyFolder } from "../phi3/helpers.ts";
import { rootSchemaArbitrary } from "./arbitrary.ts";

const NON_ASCII_BYTE = /^<0x[89A-F][0-9A-F]>$/;

describe("xgrammar masks vs our automaton for random schemas", () => {
  let folder: TinyFolder;
  let vocabulary: Vocabulary;
  let info: TokenizerInfo;
  let eosIds: number[];
  let size: number;
  beforeAll(async () => {
    folder = await makeTinyFolder(3);
    const phi3 = await readPhi3Folder(folder.dir);
    vocabulary = buildVocabulary(phi3.tokenizerJson, phi3.config.vocabSize);
    info = await createTokenizerInfo(await loadXGrammar(), vocabulary, phi3.config);
    eosIds = phi3.config.eosIds;
    size = phi3.config.vocabSize;
  });
  afterAll(async () => {
    info?.dispose();
    await folder?.remove();
  });

  it("allow the same tokens at every step", { timeout: 240_000 }, async () => {
    const xg = await loadXGrammar();
    const cache = new ConstraintCache({ xgrammar: xg, tokenizerInfo: info, vocabulary });
    const schemas = fc.sample(rootSchemaArbitrary, { seed: 777, numRuns: 25 });
    let steps = 0;
    let seed = 1;
    for (const schema of schemas) {
      const lease = await cache.lease(schema);
      const { grammar, nfa, planner } = lease.constraint;
      for (let walk = 0; walk < 3; walk++) {
        const matcher = await xg.GrammarMatcher.createGrammarMatcher(grammar);
        let state: StateSet = nfa.initial();
        for (let step = 0; step < 50 && !nfa.isFinal(state); step++) {
          const mask = await matcher.getNextTokenBitmask();
          const ours: number[] = [];
          const extra: string[] = [];
          for (let id = 0; id < size; id++) {
            const bytes = vocabulary.bytes[id];
            const mine = bytes !== undefined && nfa.advance(state, bytes) !== undefined;
            const theirs = bitmaskAllows(mask, id);
            if (mine) ours.push(id);
            if (mine && !theirs)
              expect.fail(`${JSON.stringify(schema)}: xgrammar refuses ${vocabulary.tokens[id]}`);
            if (theirs && !mine) {
              const eosAtEnd = eosIds.includes(id) && nfa.isComplete(state);
              if (!eosAtEnd && !NON_ASCII_BYTE.test(vocabulary.tokens[id] ?? "")) {
                extra.push(vocabulary.tokens[id] ?? String(id));
              }
            }
          }
          expect(extra, JSON.stringify(schema)).toEqual([]);
          steps++;
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          const id =
            step > 25 || ours.length === 0
              ? (planner.plan(state).tokens[0] as number)
              : (ours[seed % ours.length] as number);
          if (id === undefined) break; // complete at the root (e.g. a number): nothing to add
          expect(matcher.acceptToken(id)).toBe(true);
          state = nfa.advance(state, vocabulary.bytes[id] as Uint8Array) as StateSet;
        }
        matcher.dispose();
      }
      lease.release();
    }
    await cache.dispose();
    expect(steps).toBeGreaterThan(1000);
  });
});
