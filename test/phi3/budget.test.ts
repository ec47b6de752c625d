import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPhi3Folder } from "../../gpu-node/phi3/folder.ts";
import { tradeProposalLanguage } from "../../gpu-node/phi3/grammar.ts";
import { buildVocabulary, type Vocabulary } from "../../gpu-node/phi3/vocab.ts";
import { BudgetPlanner } from "../../gpu-node/structured/budget.ts";
import { ByteNfa } from "../../gpu-node/structured/byte-nfa.ts";
import { makeTinyFolder, type TinyFolder, tradeSchemaValidator } from "./helpers.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const nfa = new ByteNfa(tradeProposalLanguage().lang);

/** The fewest tokens that spell `text`, by breadth-first search over every token (slow, sure). */
function bruteForceMinTokens(text: Uint8Array, vocabulary: Vocabulary): number {
  const dist = new Array<number>(text.length + 1).fill(Number.POSITIVE_INFINITY);
  dist[0] = 0;
  for (let i = 0; i < text.length; i++) {
    if (!Number.isFinite(dist[i] as number)) continue;
    for (const bytes of vocabulary.bytes) {
      if (!bytes || bytes.length === 0 || i + bytes.length > text.length) continue;
      if (bytes.every((b, k) => text[i + k] === b)) {
        dist[i + bytes.length] = Math.min(
          dist[i + bytes.length] as number,
          (dist[i] as number) + 1,
        );
      }
    }
  }
  return dist[text.length] as number;
}

describe("budget planning", () => {
  let folder: TinyFolder;
  let vocabulary: Vocabulary;
  let planner: BudgetPlanner;
  const validate = tradeSchemaValidator();
  const decode = (ids: number[]) =>
    new TextDecoder().decode(Buffer.concat(ids.map((id) => vocabulary.bytes[id] as Uint8Array)));

  beforeAll(async () => {
    folder = await makeTinyFolder();
    const { tokenizerJson, config } = await readPhi3Folder(folder.dir);
    vocabulary = buildVocabulary(tokenizerJson, config.vocabSize);
    planner = new BudgetPlanner(nfa, vocabulary);
  });
  afterAll(() => folder.remove());

  it("the minimum is the shortest valid proposal in the fewest tokens", () => {
    const plan = planner.plan(nfa.initial());
    const text = decode(plan.tokens);
    expect(validate(JSON.parse(text))).toBe(true);
    // The shortest object: empty strings, the shortest enum value, a one-digit confidence.
    expect(text).toMatch(
      /^\{"ticker": "", "action": "pass", "confidence": [01], "rationale": ""\}$/,
    );
    expect(plan.tokens.length).toBe(bruteForceMinTokens(encode(text), vocabulary));
    expect(planner.cost(nfa.initial())).toBe(plan.tokens.length);
  });

  it("segments any text into the fewest tokens (checked by brute force)", () => {
    for (const text of [
      '", "action": "pass"}',
      '{"ticker": "AAPL", "confidence": 0.5',
      "é📈\\u00e9",
      "x",
    ]) {
      const ids = planner.segment(encode(text));
      expect(decode(ids)).toBe(text);
      expect(ids.length).toBe(bruteForceMinTokens(encode(text), vocabulary));
    }
  });

  // Prefixes cut anywhere, also inside escapes, numbers, keys and multi-byte characters.
  const full =
    ' {"ticker": "A\\"é📈\\u00e9", "action": "adjust", "side": "LONG", "new_stop_pct": -12.25, "new_target_pct": null, "confidence": 0.75, "rationale": "Cut \\\\ risk."}';
  it("from every prefix, the plan completes a valid proposal and never costs more than one token per byte", () => {
    const bytes = encode(full);
    let set = nfa.initial();
    for (let cut = 0; cut <= bytes.length; cut++) {
      if (cut > 0) {
        const next = nfa.advance(set, bytes.subarray(cut - 1, cut));
        expect(next).toBeDefined();
        set = next as typeof set;
      }
      const plan = planner.plan(set);
      const completed = Buffer.concat([
        bytes.subarray(0, cut),
        ...plan.tokens.map((id) => vocabulary.bytes[id] as Uint8Array),
      ]);
      const parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(completed));
      expect(validate(parsed)).toBe(true);
      const left = nfa.completionFrom(nfa.closestState(set)).length;
      expect(plan.tokens.length).toBeLessThanOrEqual(left);
    }
    expect(nfa.isFinal(set)).toBe(true);
    expect(planner.cost(set)).toBe(0);
  });

  it("costs grow inside an open string only by what closing needs", () => {
    const inTicker = nfa.advance(nfa.initial(), encode('{"ticker": "AB'));
    const later = nfa.advance(nfa.initial(), encode('{"ticker": "ABCDEFG'));
    expect(inTicker && later).toBeTruthy();
    expect(planner.cost(later as never)).toBe(planner.cost(inTicker as never));
    expect(planner.cost(inTicker as never)).toBeLessThan(planner.cost(nfa.initial()));
  });
});
