/**
 * What only the Worker entry does: refuse to serve without API_KEYS or with a bad setting (a 503
 * envelope, never a stack), and keep a per-request database client open exactly as long as the
 * response body needs it (the streaming export reads from Postgres after the handler returned).
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type NewProposalRow, proposals } from "../../db/schema/index.ts";
import { TEST_DATABASE_URL } from "../support/db.ts";
import { createEdgeHarness, type EdgeHarness, WORKERS_TARGET } from "../support/edge.ts";
import { type RunningWorker, startWorker } from "../support/worker.ts";

/** Never dialled: a misconfigured Worker answers before touching the database. */
const UNUSED_DATABASE = "postgres://nobody:pw@127.0.0.1:9/none";

async function expectMisconfigured(res: Response) {
  expect(res.status).toBe(503);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: string; code: string; request_id: string };
  expect(body.code).toBe("misconfigured");
  expect(body.request_id).toBe(res.headers.get("x-request-id"));
  expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
  expect(JSON.stringify(body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
  return body;
}

/**
 * The Worker's error lines reach this process through wrangler's logger (console.error, drawn as a
 * red "✘ [ERROR]"). In the misconfiguration tests they are expected: capture them and check them
 * instead of printing them.
 */
function captureConsoleErrors() {
  const lines: string[] = [];
  const spy = vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  });
  return {
    lines,
    restore: () => spy.mockRestore(),
    /** Waits until a captured line matches (the worker's log arrives after its answer). */
    async waitFor(pattern: RegExp): Promise<string> {
      for (let i = 0; i < 200; i++) {
        const line = lines.find((l) => pattern.test(l));
        if (line) return line;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`no console.error line matched ${pattern}: ${JSON.stringify(lines)}`);
    },
  };
}

describe("the Worker refuses to serve when misconfigured", () => {
  let worker: RunningWorker | undefined;
  let captured: ReturnType<typeof captureConsoleErrors>;
  beforeEach(() => {
    captured = captureConsoleErrors();
  });
  afterEach(() => captured.restore());
  afterAll(async () => {
    await worker?.close();
  });

  it("without API_KEYS: every request, /health included, is a 503 that says so", async () => {
    worker = await startWorker({ connectionString: UNUSED_DATABASE, vars: { API_KEYS: "" } });
    for (const [method, path] of [
      ["GET", "/health"],
      ["POST", "/generate/"],
      ["GET", "/feedback/phi3/export?kind=log"],
    ] as const) {
      const res = await fetch(`${worker.url}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "POST" ? JSON.stringify({ prompt: "x" }) : undefined,
      });
      const body = await expectMisconfigured(res);
      expect(body.error).toContain("API_KEYS");
      expect(body.error).toContain("wrangler secret put API_KEYS");
    }
    expect(await captured.waitFor(/edge misconfigured/)).toContain("API_KEYS");
    // The OpenAI-compatible surface answers in its own envelope.
    const v1 = await fetch(`${worker.url}/v1/models`);
    expect(v1.status).toBe(503);
    const v1Body = (await v1.json()) as { error: { code: string; message: string } };
    expect(v1Body.error.code).toBe("misconfigured");
    expect(v1Body.error.message).toContain("API_KEYS");
    await worker.close();
    worker = undefined;
  });

  it("with an invalid setting: a 503 naming the variable, never its value", async () => {
    worker = await startWorker({
      connectionString: UNUSED_DATABASE,
      vars: { API_KEYS: "k", GPU_NODE_URL: "ftp://secret-host.internal/x" },
    });
    const res = await fetch(`${worker.url}/generate/`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer k" },
      body: JSON.stringify({ prompt: "x" }),
    });
    const body = await expectMisconfigured(res);
    expect(body.error).toContain("GPU_NODE_URL");
    expect(body.error).not.toContain("secret-host");
    // The Worker's own log names the variable too, and never prints its value.
    expect(await captured.waitFor(/edge misconfigured/)).toContain("GPU_NODE_URL");
    expect(captured.lines.join("\n")).not.toContain("secret-host");
  });
});

describe.skipIf(!TEST_DATABASE_URL)(
  "the Worker's per-request database client (needs TEST_DATABASE_URL)",
  () => {
    // More rows than one export batch (500): later batches are read after the handler returned.
    const ROWS = 1201;
    let h: EdgeHarness;
    beforeAll(async () => {
      h = await createEdgeHarness({ target: WORKERS_TARGET });
      const start = Date.parse("2026-01-01T00:00:00Z");
      const rows: NewProposalRow[] = Array.from({ length: ROWS }, (_, i) => ({
        transactionId: randomUUID(),
        createdAt: new Date(start + i * 1000),
        endpoint: "generate_phi3",
        prompt: `prompt ${i}`,
        augmentedPrompt: `prompt ${i}`,
        maxLength: 64,
        phi3Proposal: {
          ticker: "SPY",
          action: "pass",
          confidence: 0.5,
          rationale: `row ${i}`,
        },
        phi3Model: "seeded",
        phi3PromptTokens: 1,
        phi3CompletionTokens: 1,
      }));
      for (let i = 0; i < rows.length; i += 400) {
        await h.db.db.insert(proposals).values(rows.slice(i, i + 400));
      }
    });
    afterAll(async () => {
      await h?.close();
    });

    /** Connections the Worker holds: its role (= the test schema's name) is used by nothing else. */
    const workerConnections = async () => {
      const result = await h.db.db.execute(
        sql`select count(*)::int as n from pg_stat_activity where usename = ${h.db.schema ?? ""}`,
      );
      return Number((result as unknown as { n: number }[])[0]?.n ?? -1);
    };

    it("streams an export of several batches to the end, then closes its connection", async () => {
      expect(await workerConnections()).toBe(0);
      const res = await h.request("/feedback/phi3/export?kind=log");
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = "";
      const first = await reader.read();
      text += decoder.decode(first.value, { stream: true });
      // Mid-stream the request's client is open...
      expect(await workerConnections()).toBeGreaterThan(0);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      const lines = text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { prompt: string });
      expect(lines).toHaveLength(ROWS);
      expect(lines.map((l) => l.prompt)).toEqual(
        Array.from({ length: ROWS }, (_, i) => `prompt ${i}`),
      );
      // ...and once the body is sent it is closed (waitUntil): well within the 5 s idle timeout,
      // which would otherwise free it.
      await expect.poll(workerConnections, { timeout: 3_000, interval: 100 }).toBe(0);
    });

    it("lets the connection go when a client stops reading mid-export without hanging up", async () => {
      // (workerd under wrangler dev does not pass a client's disconnect on to a streaming Worker, so
      // the body never finishes: the client's idle timeout, 5 s in edge/worker.ts, frees it.)
      const controller = new AbortController();
      const res = await h.request("/feedback/phi3/export?kind=log", { signal: controller.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      expect(await workerConnections()).toBeGreaterThan(0);
      controller.abort();
      await reader.cancel().catch(() => {});
      await expect.poll(workerConnections, { timeout: 20_000, interval: 250 }).toBe(0);
      // The Worker still answers afterwards, from a new connection.
      const after = await h.request("/feedback/phi3/export?kind=log&since=2026-01-01T00:20:00Z");
      expect((await after.text()).trim().split("\n")).toHaveLength(1);
    });
  },
);
