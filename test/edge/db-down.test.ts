/** The database goes away under a running edge: clear 503s, never a 500 or a broken 200. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEdgeHarness, type EdgeHarness } from "../support/edge.ts";

describe("database unavailable", () => {
  let h: EdgeHarness;
  beforeAll(async () => {
    h = await createEdgeHarness({ kind: "pglite" });
    await h.db.close();
  });
  afterAll(async () => {
    await h.gpu.close();
  });

  it.each([
    ["POST", "/generate/phi3/", { prompt: "AAPL?" }],
    ["POST", "/propose_trade_adjustments/", { prompt: "AAPL?" }],
    [
      "POST",
      "/feedback/phi3/",
      {
        transaction_id: "2b7d4a6e-0000-4000-8000-000000000000",
        feedback_type: "rating",
        feedback_content: 1,
      },
    ],
    ["GET", "/feedback/phi3/export?kind=log", undefined],
    ["GET", "/feedback/phi3/export?kind=feedback", undefined],
    ["GET", "/feedback/phi3/export?kind=generations", undefined],
  ])("%s %s answers 503 database_unavailable", async (method, path, body) => {
    const res = method === "POST" ? await h.post(path, body) : await h.request(path, { method });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "database_unavailable" });
  });

  it.each([
    ["hermes", false],
    ["hermes", true],
    ["phi3", false],
    ["phi3", true],
  ])(
    "/v1 %s (stream %s): 503 database_unavailable in OpenAI's shape, before any byte",
    async (model, stream) => {
      const res = await h.post("/v1/chat/completions", {
        model,
        messages: [{ role: "user", content: "AAPL?" }],
        stream,
      });
      if (model === "phi3" || !stream) {
        // phi3 reads past corrections first; hermes non-streamed records before answering.
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ error: { code: "database_unavailable" } });
        return;
      }
      // hermes streamed: the text went out, the record fails before the end: an error event, no [DONE].
      expect(res.status).toBe(200);
      const events = (await res.text()).split("\n\n").filter(Boolean);
      expect(events).not.toContain("data: [DONE]");
      expect(JSON.parse(events.at(-1)?.slice(6) ?? "")).toMatchObject({
        error: { code: "database_unavailable" },
      });
    },
  );

  it("Hermes text needs no database and still works; /health says the database is down", async () => {
    expect((await h.post("/generate/hermes/", { prompt: "hi" })).status).toBe(200);
    const health = await h.request("/health");
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({
      status: "partial_error",
      edge: { database: "error", gpu_node: "ok" },
    });
  });
});
