/**
 * The fine-tuning datasets: every line checked against its format (OpenAI chat fine-tuning for
 * SFT, prompt/chosen/rejected for DPO), the latest correction per proposal winning, through the
 * HTTP route (in process, each database) and the CLI (a real process on a PGlite data folder).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { openDatabase } from "../../db/client.ts";
import type { Database } from "../../db/database.ts";
import { migrateDatabase } from "../../db/migrate.ts";
import { feedbackItems, proposals } from "../../db/schema/index.ts";
import { exportDataset } from "../../edge/services/export-dataset.ts";
import { TradeProposal } from "../../gpu-node/contract/index.ts";
import { createEdgeHarness, type EdgeHarness, NODE_TARGETS } from "../support/edge.ts";

const run = promisify(execFile);

/** A string holding a JSON trade proposal that satisfies the schema. */
const ProposalJson = z.string().refine((s) => TradeProposal.safeParse(JSON.parse(s)).success, {
  message: "not a schema-valid proposal",
});

/** OpenAI's chat fine-tuning line; Phi-3 has no system message here. */
const SftLine = z.strictObject({
  messages: z.tuple([
    z.strictObject({ role: z.literal("user"), content: z.string().min(1) }),
    z.strictObject({ role: z.literal("assistant"), content: ProposalJson }),
  ]),
});

const DpoLine = z
  .strictObject({ prompt: z.string().min(1), chosen: ProposalJson, rejected: ProposalJson })
  .refine((l) => l.chosen !== l.rejected, { message: "chosen equals rejected" });

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const tx = (i: number) => `00000000-0000-4000-8000-00000000000${i}`;
const original = (t: string) => ({
  ticker: t,
  action: "adjust" as const,
  side: "LONG" as const,
  new_stop_pct: 5,
  confidence: 0.5,
  rationale: "original",
});

/**
 * Proposal 0: two corrections (the later wins). Proposal 1: a correction equal to the original
 * (null for the absent target): SFT only. Proposal 2: a rating only: in neither. Proposal 3: a
 * correction received late (for `since`).
 */
async function seed(db: Database) {
  for (const [i, t] of ["AAPL", "MSFT", "NVDA", "TSLA"].entries()) {
    await db.insert(proposals).values({
      transactionId: tx(i),
      createdAt: at(i),
      endpoint: "propose_trade_adjustments",
      prompt: `prompt about ${t}`,
      augmentedPrompt: `examples...\nRequest: prompt about ${t}`,
      maxLength: 64,
      phi3Proposal: original(t),
      phi3Model: "m",
      phi3PromptTokens: 1,
      phi3CompletionTokens: 1,
    });
  }
  const fb = (
    i: number,
    s: number,
    type: "correction" | "rating",
    corrected: TradeProposal | null,
  ) =>
    db.insert(feedbackItems).values({
      transactionId: tx(i),
      feedbackType: type,
      feedbackContent: { comment: "c" },
      timestamp: at(s),
      receivedAt: at(s),
      correctedProposal: corrected,
    });
  await fb(0, 10, "correction", { ...original("AAPL"), action: "pass", rationale: "first" });
  await fb(0, 20, "correction", { ...original("AAPL"), action: "abort", rationale: "latest" });
  await fb(0, 30, "rating", null);
  await fb(1, 11, "correction", { ...original("MSFT"), new_target_pct: null });
  await fb(2, 12, "rating", null);
  await fb(3, 100, "correction", { ...original("TSLA"), confidence: 0.9 });
}

const parseLines = (text: string) =>
  text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);

describe.each(NODE_TARGETS)("GET /feedback/phi3/datasets ($label)", (target) => {
  let h: EdgeHarness;
  beforeAll(async () => {
    h = await createEdgeHarness({ target });
    await seed(h.db.db);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("sft: one line per corrected proposal, the latest correction, in OpenAI's chat format", async () => {
    const res = await h.request("/feedback/phi3/datasets?format=sft");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    const lines = parseLines(await res.text());
    for (const l of lines) SftLine.parse(l);
    const parsed = lines.map((l) => SftLine.parse(l));
    expect(parsed.map((l) => l.messages[0].content)).toEqual([
      "prompt about AAPL",
      "prompt about MSFT",
      "prompt about TSLA",
    ]);
    expect(JSON.parse(parsed[0]?.messages[1].content ?? "")).toEqual({
      ticker: "AAPL",
      action: "abort",
      side: "LONG",
      new_stop_pct: 5,
      confidence: 0.5,
      rationale: "latest",
    });
    // Keys in the schema's order, as the model writes them.
    expect(parsed[0]?.messages[1].content).toBe(
      '{"ticker":"AAPL","action":"abort","side":"LONG","new_stop_pct":5,"confidence":0.5,"rationale":"latest"}',
    );
  });

  it("dpo: chosen = corrected, rejected = original, only where they differ", async () => {
    const res = await h.request("/feedback/phi3/datasets?format=dpo");
    expect(res.status).toBe(200);
    const lines = parseLines(await res.text()).map((l) => DpoLine.parse(l));
    expect(lines.map((l) => l.prompt)).toEqual(["prompt about AAPL", "prompt about TSLA"]);
    expect(JSON.parse(lines[0]?.chosen ?? "")).toMatchObject({ action: "abort" });
    expect(JSON.parse(lines[0]?.rejected ?? "")).toEqual(original("AAPL"));
  });

  it("since: only corrections received from then on", async () => {
    const res = await h.request(
      `/feedback/phi3/datasets?format=sft&since=${encodeURIComponent(at(50).toISOString())}`,
    );
    const lines = parseLines(await res.text()).map((l) => SftLine.parse(l));
    expect(lines.map((l) => l.messages[0].content)).toEqual(["prompt about TSLA"]);
  });

  it("an unknown format or a bad since is a 422 envelope", async () => {
    for (const q of ["format=csv", "", "format=sft&since=yesterday"]) {
      const res = await h.request(`/feedback/phi3/datasets?${q}`);
      expect(res.status, q).toBe(422);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_request");
    }
  });

  it("pages by keyset: every batch size gives the same lines", async () => {
    const all = async (batchSize: number) => {
      const out: unknown[] = [];
      for await (const l of exportDataset({
        ctx: { db: h.db.db },
        input: { format: "sft", batchSize },
      })) {
        out.push(l);
      }
      return out;
    };
    const expected = await all(100);
    expect(expected).toHaveLength(3);
    for (const size of [1, 2, 3]) expect(await all(size)).toEqual(expected);
  });
});

describe("npm run export:dataset (a real process)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "dataset-cli-"));
    const handle = await openDatabase({ dataDir: dir });
    try {
      await migrateDatabase(handle);
      await seed(handle.db);
    } finally {
      await handle.close();
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    run(process.execPath, ["--import", "tsx", "edge/dataset-cli.ts", ...args], {
      env: { ...process.env, DATA_DIR: dir, DATABASE_URL: "" },
      timeout: 120_000,
    });

  it("writes the dpo file with progress on stderr", async () => {
    const out = path.join(dir, "dpo.jsonl");
    const { stderr } = await cli("--format", "dpo", "--out", out);
    expect(stderr).toContain("wrote 2 line(s)");
    const lines = parseLines(await readFile(out, "utf8")).map((l) => DpoLine.parse(l));
    expect(lines).toHaveLength(2);
  });

  it("refuses a bad format with the usage line", async () => {
    const err = (await cli("--format", "csv", "--out", "x").catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain("--format must be sft or dpo");
  });
});
