import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { feedbackItems, generations, proposals } from "../../db/schema/index.ts";
import { countExport, exportLines } from "../../edge/services/export.ts";
import { createTestDatabase, DB_KINDS, type TestDatabase } from "../support/db.ts";

describe.each(DB_KINDS)("export in batches (%s)", (kind) => {
  let db: TestDatabase;
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    // Seven proposals, three sharing one timestamp, so the keyset must break ties by id.
    const seconds = [1, 2, 2, 2, 3, 4, 5];
    for (const [i, s] of seconds.entries()) {
      const tx = `00000000-0000-4000-8000-00000000000${i}`;
      await db.db.insert(proposals).values({
        transactionId: tx,
        createdAt: at(s),
        endpoint: "generate_phi3",
        prompt: `p${i}`,
        augmentedPrompt: `p${i}`,
        maxLength: 10,
        phi3Proposal: { ticker: "A", action: "pass", confidence: 0.5, rationale: "r" },
        phi3Model: "m",
        phi3PromptTokens: 1,
        phi3CompletionTokens: 1,
      });
      await db.db.insert(feedbackItems).values({
        transactionId: tx,
        feedbackType: "rating",
        feedbackContent: i,
        timestamp: at(s),
        receivedAt: at(s),
      });
      await db.db.insert(generations).values({
        // Ids not in time order, so ties at one timestamp must be broken by id, not by insert.
        id: `00000000-0000-4000-8000-00000000001${6 - i}`,
        createdAt: at(s),
        model: "hermes",
        nodeModel: "m",
        messages: [{ role: "user", content: `g${i}` }],
        params: { max_tokens: 4 },
        output: `o${i}`,
        finishReason: "stop",
        promptTokens: 1,
        completionTokens: i,
        stream: false,
      });
    }
  });
  afterAll(async () => {
    await db.destroy();
  });

  it("pages through every row exactly once, oldest first, whatever the batch size", async () => {
    for (const batchSize of [1, 2, 3, 7, 100]) {
      const log: unknown[] = [];
      for await (const line of exportLines(db.db, { kind: "log", batchSize })) log.push(line);
      expect(log.map((l) => (l as { prompt: string }).prompt)).toEqual([
        "p0",
        "p1",
        "p2",
        "p3",
        "p4",
        "p5",
        "p6",
      ]);
      const fb: unknown[] = [];
      for await (const line of exportLines(db.db, { kind: "feedback", batchSize })) fb.push(line);
      expect(fb.map((l) => (l as { feedback_content: number }).feedback_content)).toEqual([
        0, 1, 2, 3, 4, 5, 6,
      ]);
      const gen: { id: string; output: string; timestamp: string }[] = [];
      for await (const line of exportLines(db.db, { kind: "generations", batchSize })) {
        gen.push(line as (typeof gen)[number]);
      }
      // Oldest first; at the shared timestamp (p1..p3), by id: o3, o2, o1.
      expect(gen.map((g) => g.output)).toEqual(["o0", "o3", "o2", "o1", "o4", "o5", "o6"]);
      expect(new Set(gen.map((g) => g.id)).size).toBe(7);
      expect(gen[0]?.id).toBe("chatcmpl-00000000-0000-4000-8000-000000000016");
    }
  });

  it("filters by since and counts for progress", async () => {
    const since = at(3);
    const lines: unknown[] = [];
    for await (const line of exportLines(db.db, { kind: "log", since, batchSize: 2 }))
      lines.push(line);
    expect(lines).toHaveLength(3);
    expect(await countExport(db.db, { kind: "log", since })).toBe(3);
    expect(await countExport(db.db, { kind: "feedback" })).toBe(7);
    expect(await countExport(db.db, { kind: "generations", since })).toBe(3);
  });
});
