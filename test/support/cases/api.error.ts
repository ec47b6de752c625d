/**
 * The public API's errors and bad input, as cases run on every target (test/edge: in-process Node
 * on PGlite and Postgres; test/workers: the Worker in workerd through Hyperdrive).
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proposals } from "../../../db/schema/index.ts";
import { MESSAGES } from "../../../gpu-node/contract/index.ts";
import { createEdgeHarness, type EdgeHarness, type EdgeTarget } from "../edge.ts";

/** Every error is the one envelope, with a request id matching the header, and no stack. */
async function expectEnvelope(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: string } & Record<string, unknown>;
  expect(body).toMatchObject({ code, request_id: res.headers.get("x-request-id") });
  expect(typeof body.error).toBe("string");
  expect(JSON.stringify(body)).not.toMatch(/\bat .*\.ts:\d+/);
  return body;
}

export function apiErrorCases(target: EdgeTarget): void {
  describe(`public API, errors and bad input (${target.label})`, () => {
    let h: EdgeHarness;
    beforeAll(async () => {
      h = await createEdgeHarness({ target, env: { BODY_LIMIT_BYTES: "2048" } });
    });
    afterAll(async () => {
      await h?.close();
    });

    it("malformed JSON is a 400 invalid_json", async () => {
      await expectEnvelope(await h.post("/generate/", '{"prompt": "x"'), 400, "invalid_json");
    });

    it("a non-JSON content type is a 415", async () => {
      const res = await h.request("/generate/", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "prompt=x",
      });
      await expectEnvelope(res, 415, "unsupported_media_type");
    });

    it.each([
      [{}, "prompt"],
      [{ prompt: 42 }, "prompt"],
      [{ prompt: "" }, "prompt"],
      [{ prompt: "   \n " }, "prompt"],
      [{ prompt: "x", max_length: 0 }, "max_length"],
      [{ prompt: "x", max_length: -5 }, "max_length"],
      [{ prompt: "x", max_length: 1e9 }, "max_length"],
      [{ prompt: "x", max_length: 2.5 }, "max_length"],
      [{ prompt: "x", max_length: "256" }, "max_length"],
      [[1, 2], ""],
    ])("invalid body %j is a 422 naming %s", async (body, field) => {
      const out = await expectEnvelope(
        await h.post("/generate/hermes/", body),
        422,
        "invalid_request",
      );
      expect(out.error).toContain(field);
      expect(Array.isArray(out.issues)).toBe(true);
    });

    it("an unknown model_id keeps the seed's message and specified_model_id", async () => {
      const body = await expectEnvelope(
        await h.post("/generate/", { prompt: "x", model_id: "gpt-5" }),
        400,
        "invalid_model_id",
      );
      expect(body.error).toBe(MESSAGES.invalidModelId);
      expect(body.specified_model_id).toBe("gpt-5");
    });

    it("an oversize body is a 413", async () => {
      const body = await expectEnvelope(
        await h.post("/generate/", { prompt: "x".repeat(5000) }),
        413,
        "payload_too_large",
      );
      expect(body.limit_bytes).toBe(2048);
    });

    it("unknown routes are 404, wrong methods 405 with Allow", async () => {
      await expectEnvelope(await h.request("/nope"), 404, "not_found");
      await expectEnvelope(await h.post("/generate/llama/", { prompt: "x" }), 404, "not_found");
      const res = await h.request("/generate/", { method: "GET" });
      await expectEnvelope(res, 405, "method_not_allowed");
      expect(res.headers.get("allow")).toContain("POST");
      await expectEnvelope(
        await h.request("/health", { method: "DELETE" }),
        405,
        "method_not_allowed",
      );
    });

    it("feedback: bad type, bad corrected_proposal, unknown transaction", async () => {
      const res = await h.post("/generate/phi3/", { prompt: "IBM?" });
      const tx = res.headers.get("x-transaction-id");
      await expectEnvelope(
        await h.post("/feedback/phi3/", {
          transaction_id: tx,
          feedback_type: "like",
          feedback_content: {},
        }),
        422,
        "invalid_request",
      );
      const bad = await expectEnvelope(
        await h.post("/feedback/phi3/", {
          transaction_id: tx,
          feedback_type: "correction",
          feedback_content: {},
          corrected_proposal: {
            ticker: "IBM",
            action: "hold",
            confidence: 1.5,
            rationale: "x",
            extra: 1,
          },
        }),
        422,
        "invalid_request",
      );
      const paths = (bad.issues as { path: string }[]).map((i) => i.path);
      expect(paths).toEqual(
        expect.arrayContaining(["corrected_proposal.action", "corrected_proposal.confidence"]),
      );
      await expectEnvelope(
        await h.post("/feedback/phi3/", {
          transaction_id: "not-a-uuid",
          feedback_type: "rating",
          feedback_content: 1,
        }),
        422,
        "invalid_request",
      );
      await expectEnvelope(
        await h.post("/feedback/phi3/", {
          transaction_id: "2b7d4a6e-0000-4000-8000-000000000000",
          feedback_type: "rating",
          feedback_content: 1,
        }),
        404,
        "not_found",
      );
      await expectEnvelope(
        await h.post("/feedback/phi3/", {
          transaction_id: tx,
          feedback_type: "rating",
          feedback_content: 1,
          timestamp: "yesterday",
        }),
        422,
        "invalid_request",
      );
    });

    it("export: a bad kind or since is a 422", async () => {
      await expectEnvelope(await h.request("/feedback/phi3/export"), 422, "invalid_request");
      await expectEnvelope(
        await h.request("/feedback/phi3/export?kind=log&since=soon"),
        422,
        "invalid_request",
      );
    });

    it("stores injection-looking and unicode prompts verbatim", async () => {
      const prompt =
        "'); DROP TABLE proposals; -- <script>alert(1)</script> 📈 Ünïcødé \u2028 NVDA";
      const res = await h.post("/generate/phi3/", { prompt });
      expect(res.status).toBe(200);
      const tx = res.headers.get("x-transaction-id") as string;
      const [row] = await h.db.db.select().from(proposals).where(eq(proposals.transactionId, tx));
      expect(row?.prompt).toBe(prompt);
      expect((await h.recorded()).log.at(-1)?.prompt).toBe(prompt);
    });

    it("refuses NUL characters, which Postgres cannot store, with a 422", async () => {
      await expectEnvelope(
        await h.post("/generate/phi3/", { prompt: "a\u0000b" }),
        422,
        "invalid_request",
      );
    });
  });

  describe(`GPU node failures (${target.label})`, () => {
    it("unreachable GPU node: 503 gpu_node_unavailable; /health 503 unreachable", async () => {
      const h = await createEdgeHarness({ target, gpuUrl: "http://127.0.0.1:9" });
      try {
        await expectEnvelope(
          await h.post("/generate/", { prompt: "x" }),
          503,
          "gpu_node_unavailable",
        );
        const res = await h.request("/health");
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({
          status: "error",
          hermes_loaded: false,
          edge: { gpu_node: "unreachable", database: "ok" },
        });
      } finally {
        await h.close();
      }
    });

    it("a slow GPU node: 504 gpu_node_timeout, and the node sees the call aborted", async () => {
      const h = await createEdgeHarness({
        target,
        gpu: { delayMs: 5_000 },
        env: { GPU_TIMEOUT_MS: "300" },
      });
      try {
        const body = await expectEnvelope(
          await h.post("/generate/hermes/", { prompt: "x" }),
          504,
          "gpu_node_timeout",
        );
        expect(body.timeout_ms).toBe(300);
        await expect.poll(() => h.gpu.aborted.length).toBe(1);
        expect(h.gpu.calls.at(-1)?.headers["x-deadline-ms"]).toBe("300");
      } finally {
        await h.close();
      }
    });

    it("models not loaded: 503 with the seed's messages; partial health is 503", async () => {
      const h = await createEdgeHarness({ target, gpu: { hermesLoaded: false } });
      try {
        const hermes = await expectEnvelope(
          await h.post("/generate/", { prompt: "x" }),
          503,
          "model_not_loaded",
        );
        expect(hermes.error).toBe(MESSAGES.hermesNotLoaded);
        h.gpu.options.phi3Loaded = false;
        const phi3 = await expectEnvelope(
          await h.post("/generate/phi3/", { prompt: "x" }),
          503,
          "model_not_loaded",
        );
        expect(phi3.error).toBe(MESSAGES.phi3NotLoaded);
        h.gpu.options.phi3Loaded = true;
        const health = await h.request("/health");
        expect(health.status).toBe(503);
        expect(((await health.json()) as { status: string }).status).toBe("partial_error");
      } finally {
        await h.close();
      }
    });

    it("a full GPU queue: 429 with Retry-After passed through", async () => {
      const h = await createEdgeHarness({ target, gpu: { queueFull: true } });
      try {
        const res = await h.post("/generate/phi3/", { prompt: "x" });
        await expectEnvelope(res, 429, "queue_full");
        expect(res.headers.get("retry-after")).toBe("3");
      } finally {
        await h.close();
      }
    });

    it("Hermes fails after Phi-3 succeeded: the proposal is recorded and the error says so", async () => {
      const h = await createEdgeHarness({ target, gpu: { critiqueFails: true } });
      try {
        const res = await h.post("/propose_trade_adjustments/", { prompt: "AMZN breakout?" });
        const body = await expectEnvelope(res, 503, "model_not_loaded");
        expect(body.transaction_id).toMatch(/^[0-9a-f-]{36}$/);
        expect(body.phi3_proposal).toMatchObject({ ticker: "AMZN" });
        expect(body.hermes_assessment).toBeNull();
        expect(body.error).toContain("The proposal was recorded");
        const [row] = await h.db.db
          .select()
          .from(proposals)
          .where(eq(proposals.transactionId, String(body.transaction_id)));
        expect(row?.hermesError).toContain("model_not_loaded");
        expect(row?.phi3Proposal).toMatchObject({ ticker: "AMZN" });
        // Feedback on it still works.
        const fb = await h.post("/feedback/phi3/", {
          transaction_id: body.transaction_id,
          feedback_type: "rating",
          feedback_content: 2,
        });
        expect(fb.status).toBe(200);
      } finally {
        await h.close();
      }
    });

    it("the node rejecting the edge's token is our misconfiguration: 503 gpu_node_error", async () => {
      const h = await createEdgeHarness({
        target,
        gpu: { token: "right" },
        env: { GPU_NODE_TOKEN: "wrong" },
      });
      try {
        await expectEnvelope(await h.post("/generate/", { prompt: "x" }), 503, "gpu_node_error");
      } finally {
        await h.close();
      }
    });
  });
}
