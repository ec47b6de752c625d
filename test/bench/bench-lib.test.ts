/** The benchmark harness's own logic (no timings are asserted anywhere). */
import { describe, expect, it } from "vitest";
import { starredStringEbnf } from "../../bench/constrained.ts";
import { feedbackCsv, queryPrompts, tickerUniverse } from "../../bench/data/feedback.ts";
import { markdownTable, replaceSection } from "../../bench/lib/report.ts";
import { percentile, seededRandom, summarize } from "../../bench/lib/stats.ts";
import { extractTickers } from "../../edge/services/augment.ts";
import { TradeProposal } from "../../gpu-node/contract/index.ts";
import { tradeProposalLanguage } from "../../gpu-node/phi3/index.ts";

describe("stats", () => {
  it("takes nearest-rank percentiles", () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 0.5)).toBe(50);
    expect(percentile(sorted, 0.99)).toBe(99);
    expect(percentile(sorted, 1)).toBe(100);
    expect(percentile([7], 0.99)).toBe(7);
    expect(Number.isNaN(percentile([], 0.5))).toBe(true);
    expect(summarize([3, 1, 2])).toMatchObject({ n: 3, p50: 2, min: 1, max: 3, mean: 2 });
  });

  it("draws the same sequence from the same seed", () => {
    const a = seededRandom(5);
    const b = seededRandom(5);
    const c = seededRandom(6);
    const xs = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(xs);
    expect(c()).not.toBe(xs[0]);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});

describe("seeded feedback data", () => {
  const now = new Date("2026-06-01T00:00:00Z");

  it("is the same for the same seed, row count and mix as documented", () => {
    const one = [...feedbackCsv(2_000, now, 1)].map((c) => c.feedback).join("");
    const two = [...feedbackCsv(2_000, now, 1)].map((c) => c.feedback).join("");
    expect(two).toBe(one);
    const lines = one.trimEnd().split("\n");
    expect(lines).toHaveLength(2_000);
    const examples = lines.filter((l) => l.endsWith('"') && !l.endsWith(",")).length;
    // 40 % worked examples, drawn at random: well inside 30..50 % for 2,000 rows.
    expect(examples / lines.length).toBeGreaterThan(0.3);
    expect(examples / lines.length).toBeLessThan(0.5);
  });

  it("writes corrected proposals that satisfy the contract and tickers the edge extracts", () => {
    const chunk = [...feedbackCsv(400, now, 2)][0];
    expect(chunk).toBeDefined();
    const universe = new Set(tickerUniverse());
    let checked = 0;
    for (const line of chunk?.proposals.trimEnd().split("\n") ?? []) {
      // The 7th CSV field is the proposal JSON (quoted, quotes doubled).
      const json = /,"(\{.*\})",/.exec(line)?.[1]?.replaceAll('""', '"');
      expect(json).toBeDefined();
      const proposal = TradeProposal.parse(JSON.parse(json as string));
      expect(universe.has(proposal.ticker)).toBe(true);
      checked++;
    }
    expect(checked).toBe(100);
    for (const prompt of queryPrompts(20)) expect(extractTickers(prompt).length).toBeGreaterThan(0);
  });
});

describe("report", () => {
  it("renders a markdown table", () => {
    expect(markdownTable({ title: "t", columns: ["a", "b"], rows: [[1, null]] })).toBe(
      "| a | b |\n| --- | --- |\n| 1 | – |",
    );
  });

  it("replaces only the text between a result's markers", () => {
    const doc =
      "intro\n<!-- bench:x -->\nold\n<!-- /bench:x -->\nafter\n<!-- bench:y -->\nkeep\n<!-- /bench:y -->\n";
    const out = replaceSection(doc, "x", "new");
    expect(out).toBe(
      "intro\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\nafter\n<!-- bench:y -->\nkeep\n<!-- /bench:y -->\n",
    );
    expect(replaceSection(doc, "missing", "new")).toBe(doc);
  });
});

describe("the grammar before the right-recursive rewrite", () => {
  it("rewrites only the json_string rules of the shipped grammar", () => {
    const shipped = tradeProposalLanguage().ebnf;
    const starred = starredStringEbnf(shipped);
    expect(starred).toBeDefined();
    const others = (ebnf: string) => ebnf.split("\n").filter((l) => !l.startsWith("json_string"));
    expect(others(starred as string)).toEqual(others(shipped));
    expect(shipped).toContain("json_string_sub ::=");
    expect(starred).not.toContain("json_string_sub");
    expect(starred).toMatch(/^json_string ::= .*\)\* /m);
    expect(starredStringEbnf('root ::= "x"')).toBeUndefined();
  });
});
