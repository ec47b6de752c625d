import Ajv from "ajv";
/**
 * The public API's happy paths, as cases run on every target (test/edge: in-process Node on PGlite
 * and Postgres; test/workers: the Worker in workerd through Hyperdrive).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProposeResponse } from "../../../edge/routes/schemas.ts";
import { GPU_ROUTES, TRADE_PROPOSAL_JSON_SCHEMA } from "../../../gpu-node/contract/index.ts";
import { createEdgeHarness, type EdgeHarness, type EdgeTarget } from "../edge.ts";

const validProposal = new Ajv().compile(TRADE_PROPOSAL_JSON_SCHEMA);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function apiHappyCases(target: EdgeTarget): void {
  describe(`public API, happy paths (${target.label})`, () => {
    let h: EdgeHarness;
    beforeAll(async () => {
      h = await createEdgeHarness({ target });
    });
    afterAll(async () => {
      await h?.close();
    });

    it("POST /generate/ defaults to Hermes and returns generated_text", async () => {
      const res = await h.post("/generate/", { prompt: "Say hello", max_length: 3 });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-request-id")).toMatch(UUID);
      const body = await res.json();
      expect(body).toEqual({ generated_text: "Echo: Say hello" });
      const call = h.gpu.calls.at(-1);
      expect(call?.route).toBe(GPU_ROUTES.hermesGenerate);
      expect(call?.body).toMatchObject({ prompt: "Say hello", max_tokens: 3 });
      expect(call?.headers["x-request-id"]).toBe(res.headers.get("x-request-id"));
    });

    it("serves every path with and without the trailing slash", async () => {
      for (const path of ["/generate", "/generate/", "/generate/hermes", "/generate/hermes/"]) {
        const res = await h.post(path, { prompt: "x" });
        expect(res.status, path).toBe(200);
      }
      expect((await h.request("/health/")).status).toBe(200);
    });

    it("max_length defaults to 256 new tokens", async () => {
      await h.post("/generate/hermes/", { prompt: "x" });
      expect(h.gpu.calls.at(-1)?.body).toMatchObject({ max_tokens: 256 });
    });

    it("POST /generate/phi3/ returns exactly the schema object, with X-Transaction-Id, recorded", async () => {
      const res = await h.post("/generate/phi3/", {
        prompt: "Trim the stop on MSFT?",
        max_length: 64,
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { ticker: string };
      expect(validProposal(body)).toBe(true);
      expect(body.ticker).toBe("MSFT");
      const tx = res.headers.get("x-transaction-id");
      expect(tx).toMatch(UUID);
      const line = (await h.recorded()).log.at(-1);
      expect(line).toMatchObject({
        transaction_id: tx,
        phi3_proposal: body,
        hermes_assessment: null,
        prompt: "Trim the stop on MSFT?",
        endpoint: "generate_phi3",
      });
    });

    it("POST /generate/ with model_id phi3 returns a proposal", async () => {
      const res = await h.post("/generate/", { prompt: "AAPL?", model_id: "phi3" });
      expect(res.status).toBe(200);
      expect(validProposal(await res.json())).toBe(true);
      expect(res.headers.get("x-transaction-id")).toMatch(UUID);
    });

    it("propose -> feedback correction -> the next proposal's prompt carries the correction", async () => {
      const first = await h.post("/propose_trade_adjustments/", {
        prompt: "TSLA dropped 8% after delivery miss; adjust my long?",
        max_length: 50,
      });
      expect(first.status).toBe(200);
      const proposed = (await first.json()) as ProposeResponse;
      expect(proposed.transaction_id).toMatch(UUID);
      expect(validProposal(proposed.phi3_proposal)).toBe(true);
      expect(proposed.hermes_assessment).toContain("The following trade adjustment was proposed");
      const critique = h.gpu.calls.at(-1);
      expect(critique?.route).toBe(GPU_ROUTES.hermesCritique);
      expect(critique?.body).toMatchObject({ max_length: 50 });

      const corrected = {
        ticker: "TSLA",
        action: "adjust",
        side: "LONG",
        new_stop_pct: 7.5,
        new_target_pct: null,
        confidence: 0.8,
        rationale: "Delivery miss is priced in; widen the stop.",
      };
      const fb = await h.post("/feedback/phi3/", {
        transaction_id: proposed.transaction_id,
        feedback_type: "correction",
        feedback_content: { comment: "Stop too tight" },
        corrected_proposal: corrected,
      });
      expect(fb.status).toBe(200);
      expect(await fb.json()).toEqual({
        message: "Feedback received successfully",
        transaction_id: proposed.transaction_id,
      });

      const second = await h.post("/propose_trade_adjustments/", {
        prompt: "TSLA bounced 3%, should I move my stop?",
      });
      expect(second.status).toBe(200);
      const sent = h.gpu.calls.filter((c) => c.route === GPU_ROUTES.phi3Generate).at(-1)?.body as {
        prompt: string;
      };
      expect(sent.prompt).toContain(
        "Request: TSLA dropped 8% after delivery miss; adjust my long?",
      );
      expect(sent.prompt).toContain(JSON.stringify(corrected));
      expect(sent.prompt.endsWith("Request: TSLA bounced 3%, should I move my stop?")).toBe(true);

      const recorded = await h.recorded();
      const log = recorded.log.at(-1) as { augmented_prompt: string; example_ids: string[] };
      expect(log.augmented_prompt).toBe(sent.prompt);
      expect(log.example_ids).toHaveLength(1);
      expect(recorded.feedback.at(-1)).toMatchObject({
        transaction_id: proposed.transaction_id,
        feedback_type: "correction",
        corrected_proposal: corrected,
      });
    });

    it("accepts several feedback items per proposal, ratings and comments, and a given timestamp", async () => {
      const res = await h.post("/generate/phi3/", { prompt: "QQQ?" });
      const tx = res.headers.get("x-transaction-id");
      for (const item of [
        { feedback_type: "rating", feedback_content: 4 },
        { feedback_type: "qualitative_comment", feedback_content: "too cautious" },
        { feedback_type: "correction", feedback_content: { note: "no corrected proposal" } },
      ]) {
        const fb = await h.post("/feedback/phi3", {
          transaction_id: tx,
          timestamp: "2026-10-27T10:30:00Z",
          ...item,
        });
        expect(fb.status).toBe(200);
      }
      expect((await h.recorded()).feedback.at(-1)).toMatchObject({
        timestamp: "2026-10-27T10:30:00.000Z",
        corrected_proposal: null,
      });
    });

    it("exports what was stored as NDJSON, in the seed's field names", async () => {
      const recorded = await h.recorded();
      const log = await h.request("/feedback/phi3/export?kind=log");
      expect(log.status).toBe(200);
      expect(log.headers.get("content-type")).toContain("application/x-ndjson");
      const logLines = (await log.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(logLines.length).toBe(recorded.log.length);
      const ids = (lines: Record<string, unknown>[]) => lines.map((l) => l.transaction_id).sort();
      expect(ids(logLines)).toEqual(ids(recorded.log));
      for (const line of logLines) {
        expect(Object.keys(line).slice(0, 4)).toEqual([
          "transaction_id",
          "timestamp",
          "phi3_proposal",
          "hermes_assessment",
        ]);
        expect(typeof line.augmented_prompt).toBe("string");
      }
      const fb = await h.request("/feedback/phi3/export/?kind=feedback");
      const fbLines = (await fb.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(fbLines).toHaveLength(recorded.feedback.length);
      expect(fbLines.map((l) => l.id).sort()).toEqual(recorded.feedback.map((l) => l.id).sort());
      expect(Object.keys(fbLines[0]).slice(0, 5)).toEqual([
        "transaction_id",
        "feedback_type",
        "feedback_content",
        "timestamp",
        "corrected_proposal",
      ]);
      const future = await h.request(
        "/feedback/phi3/export?kind=feedback&since=2999-01-01T00:00:00Z",
      );
      expect(await future.text()).toBe("");
    });

    it("GET /health reports the seed's keys and the edge's own view", async () => {
      const res = await h.request("/health");
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toMatchObject({
        status: "ok",
        hermes_loaded: true,
        phi3_loaded: true,
        phi3_model_file_exists: true,
        device: "cpu",
        edge: {
          database: "ok",
          database_kind: target.kind,
          gpu_node: "ok",
          version: h.version,
          runtime: target.runtime,
        },
      });
    });

    it("describes itself: /openapi.json and /docs", async () => {
      const doc = (await (await h.request("/openapi.json")).json()) as { paths: object };
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          "/generate",
          "/generate/hermes",
          "/generate/phi3",
          "/propose_trade_adjustments",
          "/feedback/phi3",
          "/feedback/phi3/export",
          "/health",
        ]),
      );
      const docs = await h.request("/docs");
      expect(docs.status).toBe(200);
      expect(await docs.text()).toContain("/openapi.json");
    });
  });
}
