/**
 * API keys and request ids, as cases run on every target (test/edge: in-process Node; test/workers:
 * the Worker in workerd, where API_KEYS is required).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEdgeHarness, type EdgeHarness, type EdgeTarget } from "../edge.ts";

export function apiSecurityCases(target: EdgeTarget): void {
  describe(`API keys (${target.label})`, () => {
    let h: EdgeHarness;
    beforeAll(async () => {
      h = await createEdgeHarness({ target, env: { API_KEYS: "key-one,key-two" } });
    });
    afterAll(async () => {
      await h?.close();
    });

    it.each([
      ["POST", "/generate/"],
      ["POST", "/generate/hermes/"],
      ["POST", "/generate/phi3/"],
      ["POST", "/propose_trade_adjustments/"],
      ["POST", "/feedback/phi3/"],
      ["GET", "/feedback/phi3/export?kind=log"],
      ["GET", "/openapi.json"],
      ["GET", "/nope"],
    ])("%s %s needs a key (401 envelope)", async (method, path) => {
      const res = await h.request(path, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "POST" ? JSON.stringify({ prompt: "x" }) : undefined,
      });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
      const body = await res.json();
      expect(body).toMatchObject({
        code: "unauthorized",
        request_id: res.headers.get("x-request-id"),
      });
    });

    it("rejects a wrong key and accepts each configured key", async () => {
      const wrong = await h.post(
        "/generate/",
        { prompt: "x" },
        { authorization: "Bearer key-three" },
      );
      expect(wrong.status).toBe(401);
      expect(((await wrong.json()) as { error: string }).error).toBe("Invalid API key.");
      for (const key of ["key-one", "key-two"]) {
        const ok = await h.post("/generate/", { prompt: "x" }, { authorization: `Bearer ${key}` });
        expect(ok.status).toBe(200);
      }
    });

    it("leaves /health open, but without a key it shows only the seed's keys and status", async () => {
      // The harness sends a key by default on Workers: send none (and a wrong one) explicitly.
      for (const authorization of ["", "Bearer key-three"]) {
        const res = await h.request("/health", { headers: { authorization } });
        expect(res.status).toBe(200);
        const body = (await res.json()) as Record<string, unknown>;
        expect(Object.keys(body).sort()).toEqual(
          ["device", "hermes_loaded", "phi3_loaded", "phi3_model_file_exists", "status"].sort(),
        );
        expect(body.status).toBe("ok");
        expect(JSON.stringify(body)).not.toMatch(/path|version|memory|queue|\//i);
      }
      // The same 200/503 rule: the GPU node's models down is a 503, still without details.
      h.gpu.options.hermesLoaded = false;
      try {
        const down = await h.request("/health", { headers: { authorization: "" } });
        expect(down.status).toBe(503);
        const body = (await down.json()) as Record<string, unknown>;
        expect(body.status).toBe("partial_error");
        expect(body.edge).toBeUndefined();
      } finally {
        h.gpu.options.hermesLoaded = true;
      }
      // With a key: everything.
      const full = await h.request("/health", { headers: { authorization: "Bearer key-two" } });
      expect(full.status).toBe(200);
      const body = (await full.json()) as Record<string, unknown>;
      expect(body).toHaveProperty("edge.version");
      expect(body).toHaveProperty("gpu_node");
    });

    it("never forwards the client's key to the GPU node", async () => {
      await h.post("/generate/", { prompt: "x" }, { authorization: "Bearer key-one" });
      expect(h.gpu.calls.at(-1)?.headers.authorization).toBeUndefined();
    });

    it("keeps a sane client request id and replaces a hostile one", async () => {
      const kept = await h.request("/health", { headers: { "x-request-id": "abc-123" } });
      expect(kept.headers.get("x-request-id")).toBe("abc-123");
      const replaced = await h.request("/health", { headers: { "x-request-id": "a b<script>" } });
      expect(replaced.headers.get("x-request-id")).not.toContain("<");
    });
  });
}
