/**
 * xgrammar's masks on the model's (tiny) vocabulary agree with our automaton: the two views of the
 * language allow the same tokens at every position we try (up to xgrammar's leniency about
 * malformed UTF-8), and no control or padding token is ever allowed inside the text.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Phi3Folder, readPhi3Folder } from "../../gpu-node/phi3/folder.ts";
import { tradeProposalLanguage } from "../../gpu-node/phi3/grammar.ts";
import { createTokenizerInfo } from "../../gpu-node/phi3/index.ts";
import { buildVocabulary, type Vocabulary } from "../../gpu-node/phi3/vocab.ts";
import {
  bitmaskAllows,
  type CompiledGrammar,
  loadXGrammar,
  type TokenizerInfo,
} from "../../gpu-node/phi3/xgrammar.ts";
import { BudgetPlanner } from "../../gpu-node/structured/budget.ts";
import { ByteNfa, type StateSet } from "../../gpu-node/structured/byte-nfa.ts";
import { makeTinyFolder, type TinyFolder } from "./helpers.ts";

const NON_ASCII_BYTE = /^<0x[89A-F][0-9A-F]>$/;

describe("xgrammar masks vs our automaton on the model's vocabulary", () => {
  let folder: TinyFolder;
  let phi3: Phi3Folder;
  let vocabulary: Vocabulary;
  let info: TokenizerInfo;
  let compiled: CompiledGrammar;
  const language = tradeProposalLanguage();
  const nfa = new ByteNfa(language.lang);

  beforeAll(async () => {
    folder = await makeTinyFolder();
    phi3 = await readPhi3Folder(folder.dir);
    vocabulary = buildVocabulary(phi3.tokenizerJson, phi3.config.vocabSize);
    const xg = await loadXGrammar();
    info = await createTokenizerInfo(xg, vocabulary, phi3.config);
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info);
    compiled = await compiler.compileGrammar(language.ebnf);
    compiler.dispose();
  });
  afterAll(async () => {
    compiled?.dispose();
    info?.dispose();
    await folder?.remove();
  });

  it("treat `</s>` (id 2, not special in the vocabulary) as no text", () => {
    expect(vocabulary.tokens[2]).toBe("</s>");
    expect(vocabulary.specialIds.has(2)).toBe(true);
    expect(vocabulary.bytes[2]).toBeUndefined();
  });

  it("allow the same tokens at every step of sampled walks through the language", async () => {
    const xg = await loadXGrammar();
    const planner = new BudgetPlanner(nfa, vocabulary);
    let checkedSteps = 0;
    for (let walk = 0; walk < 12; walk++) {
      const matcher = await xg.GrammarMatcher.createGrammarMatcher(compiled);
      let state: StateSet = nfa.initial();
      let seed = walk * 7919 + 1;
      for (let step = 0; step < 60 && !nfa.isFinal(state); step++) {
        const mask = await matcher.getNextTokenBitmask();
        const ours: number[] = [];
        const theirs: number[] = [];
        for (let id = 0; id < phi3.config.vocabSize; id++) {
          const bytes = vocabulary.bytes[id];
          if (bytes && nfa.advance(state, bytes)) ours.push(id);
          if (bitmaskAllows(mask, id)) theirs.push(id);
        }
        // xgrammar is lenient about UTF-8 well-formedness (it lets through lead bytes C0, C1,
        // F5..F7 and overlong or surrogate continuations as byte tokens); our automaton refuses
        // those, and the loop then draws again. Nothing else may differ.
        const extra = theirs.filter((id) => !ours.includes(id));
        expect(
          extra.map((id) => vocabulary.tokens[id]).filter((t) => !NON_ASCII_BYTE.test(t as string)),
        ).toEqual([]);
        expect(ours.filter((id) => !theirs.includes(id))).toEqual([]);
        for (const id of theirs) expect(vocabulary.specialIds.has(id)).toBe(false);
        // `</s>` is a plain token of the vocabulary, but never text.
        expect(theirs).not.toContain(2);
        checkedSteps++;
        // Walk on: mostly random allowed tokens, sometimes the closing plan (to reach the end).
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const id =
          step > 30
            ? (planner.plan(state).tokens[0] as number)
            : (ours[seed % ours.length] as number);
        expect(matcher.acceptToken(id)).toBe(true);
        state = nfa.advance(state, vocabulary.bytes[id] as Uint8Array) as StateSet;
      }
      expect(nfa.isFinal(state)).toBe(true);
      // At the end only the EOS ids remain allowed.
      const end = await matcher.getNextTokenBitmask();
      const allowed = [];
      for (let id = 0; id < phi3.config.vocabSize; id++)
        if (bitmaskAllows(end, id)) allowed.push(id);
      expect(allowed.sort()).toEqual([...phi3.config.eosIds].sort());
      matcher.dispose();
    }
    expect(checkedSteps).toBeGreaterThan(300);
  });
});
