import { describe, expect, it } from "vitest";
import { ServiceError } from "../../gpu-node/contract/errors.ts";
import {
  ErrorBody,
  GPU_ROUTES,
  MESSAGES,
  REQUEST_ID_HEADER,
} from "../../gpu-node/contract/index.ts";
import { createHarness } from "./harness.ts";
import { SAMPLE_PROPOSAL } from "./scripted-runtime.ts";

async function envelope(res: Response) {
  const body = ErrorBody.parse(await res.json());
  expect(body.request_id).toBe(res.headers.get(REQUEST_ID_HEADER));
  return body;
}

describe("GPU node app: errors", () => {
  it.each([
    ["a missing prompt", GPU_ROUTES.hermesGenerate, { max_tokens: 5 }, "prompt"],
    ["an empty prompt", GPU_ROUTES.phi3Generate, { prompt: "", max_tokens: 5 }, "prompt"],
    ["max_tokens of 0", GPU_ROUTES.hermesGenerate, { prompt: "x", max_tokens: 0 }, "max_tokens"],
    [
      "max_tokens above 4096",
      GPU_ROUTES.phi3Generate,
      { prompt: "x", max_tokens: 5000 },
      "max_tokens",
    ],
    ["an unknown key", GPU_ROUTES.hermesGenerate, { prompt: "x", max_tokens: 5, extra: 1 }, ""],
    [
      "a bad sampling value",
      GPU_ROUTES.hermesGenerate,
      { prompt: "x", max_tokens: 5, sampling: { temperature: 9 } },
      "sampling.temperature",
    ],
    [
      "a proposal outside the schema",
      GPU_ROUTES.hermesCritique,
      { proposal: { ...SAMPLE_PROPOSAL, confidence: 1.5 }, max_length: 10 },
      "proposal.confidence",
    ],
    ["a JSON array", GPU_ROUTES.phi3Generate, [1, 2], ""],
  ])("422 invalid_request for %s", async (_name, path, body, issuePath) => {
    const h = createHarness();
    const res = await h.post(path, body);
    expect(res.status).toBe(422);
    const error = await envelope(res);
    expect(error.code).toBe("invalid_request");
    const issues = error.issues as { path: string; message: string }[];
    expect(issues.map((issue) => issue.path)).toContain(issuePath);
    expect(h.hermes.script.calls).toHaveLength(0);
    expect(h.phi3.script.calls).toHaveLength(0);
  });

  it("400 invalid_json for a malformed body", async () => {
    const h = createHarness();
    const res = await h.post(GPU_ROUTES.hermesGenerate, '{"prompt": "x", ');
    expect(res.status).toBe(400);
    expect((await envelope(res)).code).toBe("invalid_json");
  });

  it("415 for a body that is not JSON", async () => {
    const h = createHarness();
    const res = await h.post(GPU_ROUTES.hermesGenerate, "prompt=x", {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(415);
    expect((await envelope(res)).code).toBe("unsupported_media_type");
  });

  it("413 for an oversized body", async () => {
    const h = createHarness();
    const res = await h.post(GPU_ROUTES.hermesGenerate, {
      prompt: "x".repeat(1_100_000),
      max_tokens: 5,
    });
    expect(res.status).toBe(413);
    expect((await envelope(res)).code).toBe("payload_too_large");
  });

  it("422 for a malformed deadline header", async () => {
    const h = createHarness();
    const res = await h.post(
      GPU_ROUTES.hermesGenerate,
      { prompt: "x", max_tokens: 5 },
      { headers: { "X-Deadline-Ms": "soon" } },
    );
    expect(res.status).toBe(422);
    const error = await envelope(res);
    expect(error.code).toBe("invalid_request");
    expect(error.error).toContain("X-Deadline-Ms");
  });

  it("404 in the envelope for an unknown route", async () => {
    const h = createHarness();
    const res = await h.get("/v1/nothing-here");
    expect(res.status).toBe(404);
    const error = await envelope(res);
    expect(error.code).toBe("not_found");
    expect(error.error).toBe("No route for GET /v1/nothing-here.");
  });

  it("405 with Allow for a wrong method on a known route", async () => {
    const h = createHarness();
    const res = await h.get(GPU_ROUTES.phi3Generate);
    expect(res.status).toBe(405);
    expect(res.headers.get("Allow")).toBe("POST");
    expect((await envelope(res)).code).toBe("method_not_allowed");
    const del = await h.app.request(`http://gpu-node.test${GPU_ROUTES.health}`, {
      method: "DELETE",
    });
    expect(del.status).toBe(405);
    expect(del.headers.get("Allow")).toBe("GET, HEAD");
  });

  it("503 model_not_loaded with the seed's messages while loading", async () => {
    const h = createHarness({ ready: false });
    h.registry.hermes.markLoading({ fraction: 0.4, phase: "loading weights" });
    const res = await h.post(GPU_ROUTES.hermesGenerate, { prompt: "x", max_tokens: 5 });
    expect(res.status).toBe(503);
    const error = await envelope(res);
    expect(error).toMatchObject({
      error: MESSAGES.hermesNotLoaded,
      code: "model_not_loaded",
      state: "loading",
      reason: "still loading (40%, loading weights)",
    });
    const critique = await h.post(GPU_ROUTES.hermesCritique, {
      proposal: SAMPLE_PROPOSAL,
      max_length: 5,
    });
    expect(critique.status).toBe(503);
    expect((await envelope(critique)).error).toBe(MESSAGES.hermesNotLoaded);

    const phi3 = await h.post(GPU_ROUTES.phi3Generate, { prompt: "x", max_tokens: 5 });
    expect(phi3.status).toBe(503);
    expect(await envelope(phi3)).toMatchObject({
      error: MESSAGES.phi3NotLoaded,
      code: "model_not_loaded",
      state: "loading",
    });
  });

  it("503 model_not_loaded names the reason after a load error, a missing file or `off`", async () => {
    const h = createHarness({ ready: false });
    h.registry.phi3.markError("failed to load /models/phi3/test: bad onnx");
    h.registry.hermes.markMissing("model file not found: /m/h.gguf (run `npm run models:pull`)");
    const phi3 = await envelope(
      await h.post(GPU_ROUTES.phi3Generate, { prompt: "x", max_tokens: 5 }),
    );
    expect(phi3).toMatchObject({
      error: MESSAGES.phi3NotLoaded,
      state: "error",
      reason: "failed to load /models/phi3/test: bad onnx",
    });
    const hermes = await envelope(
      await h.post(GPU_ROUTES.hermesGenerate, { prompt: "x", max_tokens: 5 }),
    );
    expect(hermes).toMatchObject({ state: "missing" });
    expect(String(hermes.reason)).toContain("npm run models:pull");
  });

  it("maps a runtime's ServiceError to its code's status, code and details", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.hermesGenerate, { prompt: "long", max_tokens: 5 });
    (await h.hermes.script.nextCall()).fail(
      new ServiceError("prompt_too_long", "The prompt does not fit the context.", {
        prompt_tokens: 9000,
        context_size: 6144,
      }),
    );
    const res = await pending;
    expect(res.status).toBe(400);
    expect(await envelope(res)).toMatchObject({
      code: "prompt_too_long",
      error: "The prompt does not fit the context.",
      prompt_tokens: 9000,
      context_size: 6144,
    });
  });

  it("500 internal_error with a generic message for anything else; the stack only in the log", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.phi3Generate, { prompt: "x", max_tokens: 5 });
    (await h.phi3.script.nextCall()).fail(new TypeError("secret internals at line 12"));
    const res = await pending;
    expect(res.status).toBe(500);
    const error = await envelope(res);
    expect(error.code).toBe("internal_error");
    expect(JSON.stringify(error)).not.toContain("secret internals");
    const logged = h.logs.find((line) => line.msg === "unhandled error");
    expect(JSON.stringify(logged)).toContain("secret internals");
    expect((logged?.err as { stack?: string } | undefined)?.stack).toContain("TypeError");
  });
});
