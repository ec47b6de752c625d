import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { feedbackItems, proposals } from "../../db/schema/index.ts";
import {
  buildAugmentedPrompt,
  extractTickers,
  promptQuery,
  rankExamples,
  selectExamples,
  type WorkedExample,
} from "../../edge/services/augment.ts";
import { parseEdgeSettings } from "../../edge/settings.ts";
import { createTestDatabase, DB_KINDS, type TestDatabase } from "../support/db.ts";

const example = (over: Partial<WorkedExample>): WorkedExample => ({
  id: "1",
  prompt: "p",
  correctedProposal: { ticker: "X", action: "pass", confidence: 0.5, rationale: "r" },
  ticker: "X",
  receivedAt: new Date("2026-01-01T00:00:00Z"),
  sameTicker: false,
  similarity: 0,
  ...over,
});

describe("extractTickers", () => {
  it("finds $-tickers and upper-case symbols, skipping common acronyms", () => {
    expect(
      extractTickers("Should I BUY more AAPL or $msft before the CEO call? RSI is 70"),
    ).toEqual(["MSFT", "AAPL"]);
    expect(extractTickers("BRK.B looks weak; LONG NVDA")).toEqual(["BRK.B", "NVDA"]);
    expect(extractTickers("no tickers here")).toEqual([]);
  });
});

describe("promptQuery", () => {
  it("keeps words only, lower-cased, without stop words or repeats", () => {
    expect(promptQuery("Should I tighten the STOP on my NVDA long? stop!")).toBe(
      "tighten | stop | nvda | long",
    );
    expect(promptQuery("Gewinnmitnahme bei Ölpreis 85$ – ja?")).toBe(
      "gewinnmitnahme | bei | ölpreis | 85 | ja",
    );
  });

  it("never passes tsquery syntax through", () => {
    const q = promptQuery("aa & bb | !cc (dd) 'ee' ff:* <-> \\gg") ?? "";
    expect(q).toMatch(/^[\p{L}\p{N}]+( \| [\p{L}\p{N}]+)*$/u);
    expect(promptQuery("?! & | ()")).toBeUndefined();
  });
});

describe("rankExamples", () => {
  it("orders same ticker first, then similarity, then recency, and dedupes", () => {
    const old = new Date("2026-01-01T00:00:00Z");
    const recent = new Date("2026-06-01T00:00:00Z");
    const ranked = rankExamples(
      [
        example({ id: "a", similarity: 0.9, receivedAt: recent }),
        example({ id: "b", sameTicker: true, similarity: 0.1, receivedAt: old }),
        example({ id: "c", similarity: 0.9, receivedAt: old }),
        example({ id: "d", sameTicker: true, similarity: 0.3, receivedAt: old }),
        example({ id: "a", similarity: 0.9, receivedAt: recent }),
        example({ id: "e", similarity: 0.2, receivedAt: recent }),
      ],
      4,
    );
    expect(ranked.map((e) => e.id)).toEqual(["d", "b", "a", "c"]);
  });
});

describe("buildAugmentedPrompt", () => {
  it("leaves the prompt unchanged without examples", () => {
    expect(buildAugmentedPrompt("hello", [], 2000)).toEqual({ prompt: "hello", examples: [] });
  });

  it("prepends worked examples as request -> corrected answer, ending with the prompt", () => {
    const out = buildAugmentedPrompt(
      "What about TSLA?",
      [example({ id: "7", prompt: "Old TSLA question", ticker: "TSLA" })],
      2000,
    );
    expect(out.examples.map((e) => e.id)).toEqual(["7"]);
    expect(out.prompt).toContain('Request: Old TSLA question\nCorrected answer: {"ticker":"X"');
    expect(out.prompt.endsWith("Request: What about TSLA?")).toBe(true);
  });

  it("keeps within the character budget, dropping examples that do not fit", () => {
    const many = Array.from({ length: 10 }, (_, i) =>
      example({ id: String(i), prompt: "x".repeat(300) }),
    );
    const out = buildAugmentedPrompt("Q", many, 1200);
    expect(out.examples.length).toBeGreaterThan(0);
    expect(out.examples.length).toBeLessThan(10);
    expect(out.prompt.length - "Q".length).toBeLessThanOrEqual(1200);
  });
});

describe.each(DB_KINDS)("selectExamples on %s", (kind) => {
  let db: TestDatabase;
  const now = new Date("2026-11-01T12:00:00Z");
  const settings = parseEdgeSettings({ AUGMENT_MAX_EXAMPLES: "3", AUGMENT_MAX_AGE_DAYS: "30" });

  async function addCorrection(
    id: string,
    prompt: string,
    ticker: string,
    daysAgo: number,
    type = "correction",
  ) {
    const at = new Date(now.getTime() - daysAgo * 86_400_000);
    const tx = `00000000-0000-4000-8000-${id.padStart(12, "0")}`;
    await db.db.insert(proposals).values({
      transactionId: tx,
      createdAt: at,
      endpoint: "generate_phi3",
      prompt,
      augmentedPrompt: prompt,
      maxLength: 256,
      phi3Proposal: { ticker, action: "pass", confidence: 0.1, rationale: "orig" },
      phi3Model: "m",
      phi3PromptTokens: 1,
      phi3CompletionTokens: 1,
    });
    const corrected = {
      ticker,
      action: "adjust" as const,
      confidence: 0.9,
      rationale: `fix ${id}`,
    };
    const isExample = type === "correction";
    const [row] = await db.db
      .insert(feedbackItems)
      .values({
        transactionId: tx,
        feedbackType: type as "correction",
        feedbackContent: {},
        timestamp: at,
        correctedProposal: corrected,
        receivedAt: at,
        exampleTicker: isExample ? ticker : null,
        examplePrompt: isExample ? prompt : null,
      })
      .returning();
    return String(row?.id);
  }

  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await db.destroy();
  });

  it("ranks same ticker, then similar prompts, then recent; ignores old and non-corrections", async () => {
    const nvdaOld = await addCorrection("1", "NVDA earnings beat, stop too tight", "NVDA", 20);
    const similar = await addCorrection("2", "AMD earnings beat, stop too tight?", "AMD", 10);
    const recent = await addCorrection("3", "Gold miners rally on weak dollar", "GDX", 1);
    await addCorrection("4", "NVDA earnings beat, stop too tight", "NVDA", 60); // too old
    await addCorrection("5", "NVDA earnings beat, stop too tight", "NVDA", 2, "rating"); // not an example
    const nvdaNew = await addCorrection("6", "NVDA gap up", "NVDA", 5);

    const ctx = { db: db.db, settings, clock: { now: () => now } };
    const picked = await selectExamples(ctx, "NVDA earnings beat, stop too tight?");
    expect(picked.map((e) => e.id)).toEqual([nvdaOld, nvdaNew, similar]);
    expect(picked[0]?.correctedProposal.rationale).toBe("fix 1");

    // No ticker and no shared trigram: recency decides.
    const none = await selectExamples(ctx, "qqqq vvvv");
    expect(none.map((e) => e.id)).toEqual([recent, nvdaNew, similar]);

    // Text-search operators in a prompt are just characters.
    const hostile = await selectExamples(ctx, "earnings & | ! ( ) : * ' \\ <-> tight");
    expect(hostile.map((e) => e.id)).toContain(similar);
    const wordless = await selectExamples(ctx, "?! & | ()");
    expect(wordless.map((e) => e.id)).toEqual([recent, nvdaNew, similar]);

    const zero = await selectExamples(
      { ...ctx, settings: { ...settings, AUGMENT_MAX_EXAMPLES: 0 } },
      "NVDA",
    );
    expect(zero).toEqual([]);
  });

  it("finds the most similar correction across the whole age window, not only the recent pool", async () => {
    const small = { ...settings, AUGMENT_SIMILARITY_POOL: 5 };
    const ctx = { db: db.db, settings: small, clock: { now: () => now } };
    // An old correction (25 of 30 days) that shares the most words with the new prompt...
    const planted = await addCorrection(
      "100",
      "Lithium smelter outage and copper tariff: review the ALB trade stop",
      "ALB",
      25,
    );
    // ...behind more recent corrections than the pool holds, which share only common words.
    for (let i = 0; i < 12; i++) {
      await addCorrection(
        String(200 + i),
        `Review the trade stop for T${i}X after earnings`,
        `T${i}X`,
        1 + i / 10,
      );
    }
    const prompt = "Copper tariff and a lithium smelter outage: review my SQM trade stop?";
    const picked = await selectExamples(ctx, prompt);
    expect(picked[0]?.id).toBe(planted);
    // With the table analyzed (common words known), the same.
    await db.db.execute(sql`analyze feedback_items`);
    const again = await selectExamples(ctx, prompt);
    expect(again[0]?.id).toBe(planted);
  });
});
