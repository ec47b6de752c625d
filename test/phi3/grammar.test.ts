import { describe, expect, it } from "vitest";
import { TRADE_PROPOSAL_JSON_SCHEMA } from "../../gpu-node/contract/index.ts";
import { tradeProposalLanguage } from "../../gpu-node/phi3/grammar.ts";
import { loadXGrammar } from "../../gpu-node/phi3/xgrammar.ts";
import { ByteNfa } from "../../gpu-node/structured/byte-nfa.ts";
import { schemaLanguage } from "../../gpu-node/structured/schema.ts";
import { tradeSchemaValidator } from "./helpers.ts";

const { lang, ebnf } = tradeProposalLanguage();
const nfa = new ByteNfa(lang);
const encode = (s: string) => new TextEncoder().encode(s);

/** Feeds the text to an xgrammar matcher compiled from our EBNF (a byte-level vocabulary, so
 * every byte is its own token) and asks whether the grammar then accepts the stop token. */
async function xgrammarAccepts(text: string): Promise<boolean> {
  const xg = await loadXGrammar();
  const vocab = [
    "<eos>",
    ...Array.from(
      { length: 256 },
      (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`,
    ),
  ];
  const info = await xg.TokenizerInfo.createTokenizerInfo(
    vocab,
    "byte_fallback",
    false,
    vocab.length,
    [0],
  );
  const compiler = await xg.GrammarCompiler.createGrammarCompiler(info);
  const compiled = await compiler.compileGrammar(ebnf);
  const matcher = await xg.GrammarMatcher.createGrammarMatcher(compiled);
  try {
    for (const b of encode(text)) if (!matcher.acceptToken(b + 1)) return false;
    return matcher.acceptToken(0) && matcher.isTerminated();
  } finally {
    matcher.dispose();
    compiled.dispose();
    compiler.dispose();
    info.dispose();
  }
}

const nfaAccepts = (text: string): boolean => {
  const set = nfa.advance(nfa.initial(), encode(text));
  return set !== undefined && nfa.isComplete(set);
};

const proposal = (confidence: string, extra = "") =>
  `{"ticker": "AAPL", "action": "adjust"${extra}, "confidence": ${confidence}, "rationale": "ok"}`;

describe("the trade-proposal grammar", () => {
  const validate = tradeSchemaValidator();

  it.each(["1.5", "1.0001", "-0", "-0.5", "5", "01", "0.", "1e0", ".5", "-1"])(
    "rejects confidence %s (xgrammar and our automaton agree)",
    async (confidence) => {
      const text = proposal(confidence);
      expect(await xgrammarAccepts(text)).toBe(false);
      expect(nfaAccepts(text)).toBe(false);
    },
  );

  it.each(["0", "1", "0.5", "1.0", "1.000", "0.000001", "0.999999999999999"])(
    "accepts confidence %s, which ajv also accepts",
    async (confidence) => {
      const text = proposal(confidence);
      expect(await xgrammarAccepts(text)).toBe(true);
      expect(nfaAccepts(text)).toBe(true);
      expect(validate(JSON.parse(text))).toBe(true);
    },
  );

  const cases: [string, string, boolean][] = [
    [
      "all keys",
      '{"ticker": "MSFT", "action": "abort", "side": "SHORT", "new_stop_pct": -2.5, "new_target_pct": null, "confidence": 0.25, "rationale": "Risk \\"too\\" high \\u00e9 é 📈 \\\\ \\/ \\b\\f\\n\\r\\t."}',
      true,
    ],
    [
      "leading space (a ▁ token)",
      ' {"ticker": "", "action": "pass", "confidence": 0, "rationale": ""}',
      true,
    ],
    ["missing required rationale", '{"ticker": "A", "action": "pass", "confidence": 0}', false],
    [
      "extra key",
      '{"ticker": "A", "action": "pass", "confidence": 0, "rationale": "", "extra": 1}',
      false,
    ],
    [
      "enum outside the schema",
      '{"ticker": "A", "action": "hold", "confidence": 0, "rationale": ""}',
      false,
    ],
    [
      "side outside the enum",
      '{"ticker": "A", "action": "pass", "side": "long", "confidence": 0, "rationale": ""}',
      false,
    ],
    [
      "keys out of order",
      '{"action": "pass", "ticker": "A", "confidence": 0, "rationale": ""}',
      false,
    ],
    [
      "string for a pct field",
      '{"ticker": "A", "action": "pass", "new_stop_pct": "2", "confidence": 0, "rationale": ""}',
      false,
    ],
    [
      "exponent in a pct field",
      '{"ticker": "A", "action": "pass", "new_stop_pct": 1e999, "confidence": 0, "rationale": ""}',
      false,
    ],
    [
      "raw newline in a string",
      '{"ticker": "A\n", "action": "pass", "confidence": 0, "rationale": ""}',
      false,
    ],
    ["bad escape", '{"ticker": "A\\x", "action": "pass", "confidence": 0, "rationale": ""}', false],
    [
      "trailing text",
      '{"ticker": "A", "action": "pass", "confidence": 0, "rationale": ""} ',
      false,
    ],
  ];
  it.each(cases)("%s: accepted=%s by both views, consistent with ajv", async (_name, text, ok) => {
    expect(await xgrammarAccepts(text)).toBe(ok);
    expect(nfaAccepts(text)).toBe(ok);
    if (ok) expect(validate(JSON.parse(text))).toBe(true);
  });

  it("refuses schema constructs it does not implement instead of loosening them", () => {
    const base = TRADE_PROPOSAL_JSON_SCHEMA;
    expect(() => schemaLanguage({ ...base, additionalProperties: true })).toThrow(
      /additionalProperties/,
    );
    expect(() =>
      schemaLanguage({
        ...base,
        properties: { ...base.properties, ticker: { type: "string", pattern: "^[A-Z]+$" } },
      }),
    ).toThrow(/pattern/);
    expect(() =>
      schemaLanguage({
        ...base,
        properties: { ...base.properties, ticker: { type: "string", format: "email" } },
      }),
    ).toThrow(/format/);
  });
});
