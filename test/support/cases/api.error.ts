/**
 * The public API's errors and bad input, as cases run on every target (test/edge: in-process Node
 * on PGlite and Postgres; test/workers: the Worker in workerd through Hyperdrive).
 */
import { eq, sql } from "drizzle-orm";
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
      h = await createEdgeHarness({ target, env: { BODY_LIMIT_BYTES: "32768" } });
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
        await h.post("/generate/", { prompt: "x".repeat(40_000) }),
        413,
        "payload_too_large",
      );
      expect(body.limit_bytes).toBe(32768);
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

    /** A recorded proposal to send feedback on. */
    async function newTransaction(): Promise<string> {
      const res = await h.post("/generate/phi3/", { prompt: "IBM?" });
      expect(res.status).toBe(200);
      return res.headers.get("x-transaction-id") as string;
    }

    it("JSON nested deeper than JSON_MAX_DEPTH is a 422 on every endpoint, never a 500", async () => {
      const tx = await newTransaction();
      // ~27 KB, under the body limit: was a 500 (stack overflow in the NUL check). Written as
      // text: JSON.stringify itself would overflow the stack.
      const deep = `${'{"a":'.repeat(4500)}"x"${"}".repeat(4500)}`;
      for (const [path, body] of [
        [
          "/feedback/phi3/",
          `{"transaction_id":"${tx}","feedback_type":"rating","feedback_content":${deep}}`,
        ],
        ["/generate/", `{"prompt":"x","extra":${deep}}`],
        ["/propose_trade_adjustments/", `{"prompt":"x","extra":[[[[${deep}]]]]}`],
      ] as const) {
        const out = await expectEnvelope(await h.post(path, body), 422, "invalid_request");
        expect(out.error).toContain("nested deeper than 64");
      }
      // 70 levels, well under the body limit: deeper than the default 64.
      let d70: unknown = 1;
      for (let i = 0; i < 70; i++) d70 = [d70];
      const out = await expectEnvelope(
        await h.post("/feedback/phi3/", {
          transaction_id: tx,
          feedback_type: "rating",
          feedback_content: d70,
        }),
        422,
        "invalid_request",
      );
      expect(out.error).toContain("nested deeper than 64");
      expect(String(out.error)).toContain("feedback_content");
      // 60 levels are fine and stored as sent.
      let d60: unknown = 1;
      for (let i = 0; i < 60; i++) d60 = [d60];
      const ok = await h.post("/feedback/phi3/", {
        transaction_id: tx,
        feedback_type: "rating",
        feedback_content: d60,
      });
      expect(ok.status).toBe(200);
      expect((await h.recorded()).feedback.at(-1)?.feedback_content).toEqual(d60);
    });

    it.each([
      [
        "a feedback_content value",
        (tx: string) => ({
          transaction_id: tx,
          feedback_type: "rating",
          feedback_content: { note: "a\ud800b" },
        }),
        "feedback_content.note",
      ],
      [
        "a feedback_content key",
        (tx: string) => ({
          transaction_id: tx,
          feedback_type: "rating",
          feedback_content: { "k\udc00": 1 },
        }),
        "feedback_content.k",
      ],
      [
        "corrected_proposal.ticker",
        (tx: string) => ({
          transaction_id: tx,
          feedback_type: "correction",
          feedback_content: {},
          corrected_proposal: { ticker: "\ud800", action: "pass", confidence: 0.5, rationale: "r" },
        }),
        "corrected_proposal.ticker",
      ],
      ["a prompt", () => ({ prompt: "NVDA \udbff" }), "prompt"],
    ])("a lone surrogate in %s is a 422 naming the field", async (_what, make, field) => {
      const tx = await newTransaction();
      const body = make(tx);
      const path = "prompt" in body ? "/generate/phi3/" : "/feedback/phi3/";
      // Written as JSON text: the escape stays a lone surrogate once parsed.
      const text = JSON.stringify(body).replaceAll("\\\\u", "\\u");
      const out = await expectEnvelope(await h.post(path, text), 422, "invalid_request");
      expect(String(out.error)).toContain(field);
      expect(String(out.error)).toContain("surrogate");
    });

    it.each(["0000-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+23:59"])(
      "a timestamp Postgres cannot hold (%s) is a 422, in feedback and in export's since",
      async (ts) => {
        const tx = await newTransaction();
        const out = await expectEnvelope(
          await h.post("/feedback/phi3/", {
            transaction_id: tx,
            feedback_type: "rating",
            feedback_content: 1,
            timestamp: ts,
          }),
          422,
          "invalid_request",
        );
        expect(String(out.error)).toContain("timestamp");
        const since = await expectEnvelope(
          await h.request(`/feedback/phi3/export?kind=feedback&since=${encodeURIComponent(ts)}`),
          422,
          "invalid_request",
        );
        expect(String(since.error)).toContain("since");
      },
    );

    it("the extreme timestamps Postgres can hold are stored", async () => {
      const tx = await newTransaction();
      for (const ts of ["0100-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"]) {
        const res = await h.post("/feedback/phi3/", {
          transaction_id: tx,
          feedback_type: "rating",
          feedback_content: 1,
          timestamp: ts,
        });
        expect(res.status).toBe(200);
        expect((await h.recorded()).feedback.at(-1)?.timestamp).toBe(new Date(ts).toISOString());
        const exp = await h.request(
          `/feedback/phi3/export?kind=feedback&since=${encodeURIComponent(ts)}`,
        );
        expect(exp.status).toBe(200);
        await exp.text();
      }
    });

    it("a __proto__ key is refused with a 422, never dropped silently", async () => {
      const tx = await newTransaction();
      const out = await expectEnvelope(
        await h.post(
          "/feedback/phi3/",
          `{"transaction_id":"${tx}","feedback_type":"rating","feedback_content":{"ok":1,"__proto__":{"admin":true}}}`,
        ),
        422,
        "invalid_request",
      );
      expect(String(out.error)).toContain("feedback_content.__proto__");
      // Nothing was stored for it.
      const stored = (await h.recorded()).feedback.filter((l) => l.transaction_id === tx);
      expect(stored).toEqual([]);
    });

    it("refuses NUL characters, which Postgres cannot store, with a 422", async () => {
      await expectEnvelope(
        await h.post("/generate/phi3/", { prompt: "a\u0000b" }),
        422,
        "invalid_request",
      );
    });
  });

  describe(`model output is always recorded (${target.label})`, () => {
    let h: EdgeHarness;
    beforeAll(async () => {
      h = await createEdgeHarness({ target });
    });
    afterAll(async () => {
      await h?.close();
    });

    const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("");

    it("text with every control character (NUL too) and a lone surrogate is stored and answered alike", async () => {
      h.gpu.options.outputText = `start ${controls}\u007f\u0085\ud800 end`;
      // NUL and the lone surrogate become U+FFFD; every other character is kept (README, Record).
      const stored = `start \ufffd${controls.slice(1)}\u007f\u0085\ufffd end`;
      try {
        const res = await h.post("/propose_trade_adjustments/", { prompt: "TSLA gap down?" });
        expect(res.status).toBe(200);
        const body = (await res.json()) as {
          transaction_id: string;
          hermes_assessment: string;
          phi3_proposal: { rationale: string };
        };
        expect(body.hermes_assessment).toBe(stored);
        expect(body.phi3_proposal.rationale).toBe(stored);
        const [row] = await h.db.db
          .select()
          .from(proposals)
          .where(eq(proposals.transactionId, body.transaction_id));
        expect(row?.hermesAssessment).toBe(stored);
        expect(row?.phi3Proposal.rationale).toBe(stored);
        expect(row?.hermesError).toBeNull();
        const line = (await h.recorded()).log.find((l) => l.transaction_id === body.transaction_id);
        expect(line?.hermes_assessment).toBe(stored);
        const exported = await h.request("/feedback/phi3/export?kind=log");
        const lines = (await exported.text())
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(lines.find((l) => l.transaction_id === body.transaction_id)?.hermes_assessment).toBe(
          stored,
        );
        // /generate/phi3/ records the same way.
        const phi3 = await h.post("/generate/phi3/", { prompt: "TSLA?" });
        expect(phi3.status).toBe(200);
        expect(((await phi3.json()) as { rationale: string }).rationale).toBe(stored);
      } finally {
        h.gpu.options.outputText = undefined;
      }
    });

    it("an assessment write that fails after the proposal was recorded: the answer keeps the proposal, the row says why", async () => {
      // A real database refusal: a trigger refuses assessments carrying a marker.
      await h.db.db.execute(
        sql.raw(`create or replace function refuse_marked() returns trigger language plpgsql as $$
          begin
            if new.hermes_assessment like '%REFUSE-WRITE%' then
              raise exception 'refused by the test trigger';
            end if;
            return new;
          end $$`),
      );
      await h.db.db.execute(
        sql.raw(
          "create trigger refuse_marked before update on proposals for each row execute function refuse_marked()",
        ),
      );
      h.gpu.options.outputText = "REFUSE-WRITE";
      try {
        const res = await h.post("/propose_trade_adjustments/", { prompt: "MSFT breakout?" });
        const body = await expectEnvelope(res, 503, "database_unavailable");
        expect(body.transaction_id).toMatch(/^[0-9a-f-]{36}$/);
        expect(body.phi3_proposal).toMatchObject({ ticker: "MSFT", rationale: "REFUSE-WRITE" });
        expect(body.hermes_assessment).toBeNull();
        const [row] = await h.db.db
          .select()
          .from(proposals)
          .where(eq(proposals.transactionId, String(body.transaction_id)));
        expect(row?.phi3Proposal).toMatchObject({ ticker: "MSFT" });
        expect(row?.hermesAssessment).toBeNull();
        expect(row?.hermesError).toContain("database_write_failed");
      } finally {
        h.gpu.options.outputText = undefined;
        await h.db.db.execute(sql.raw("drop trigger refuse_marked on proposals"));
      }
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
