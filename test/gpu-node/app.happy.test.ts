import { describe, expect, it } from "vitest";
import {
  GPU_ROUTES,
  GpuNodeHealth,
  HermesGenerateResponse,
  Phi3GenerateResponse,
  REQUEST_ID_HEADER,
} from "../../gpu-node/contract/index.ts";
import { critiquePrompt } from "../../gpu-node/hermes/critique-prompt.ts";
import { createHarness } from "./harness.ts";
import { hermesResult, phi3Result, SAMPLE_PROPOSAL } from "./scripted-runtime.ts";

describe("GPU node app: happy paths", () => {
  it("POST /v1/hermes/generate runs the runtime with the node's system prompt", async () => {
    const h = createHarness();
    const pending = h.post(
      GPU_ROUTES.hermesGenerate,
      { prompt: "Is AAPL overbought?", max_tokens: 64, sampling: { temperature: 0.5, seed: 7 } },
      { headers: { [REQUEST_ID_HEADER]: "edge-req-42" } },
    );
    const call = await h.hermes.script.nextCall();
    expect(call.input).toEqual({
      prompt: "Is AAPL overbought?",
      systemPrompt: "SYSTEM PROMPT",
      maxTokens: 64,
      sampling: { temperature: 0.5, seed: 7 },
    });
    expect(call.signal.aborted).toBe(false);
    h.clock.ms += 40;
    call.finish(hermesResult("It looks stretched."));

    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get(REQUEST_ID_HEADER)).toBe("edge-req-42");
    const body = HermesGenerateResponse.parse(await res.json());
    expect(body).toEqual({
      text: "It looks stretched.",
      model: "scripted-hermes",
      finish_reason: "stop",
      usage: { prompt_tokens: 12, completion_tokens: 4 },
      timings: { queue_ms: 0, prompt_ms: 3, generate_ms: 7, total_ms: 40 },
    });
  });

  it("a request's system_prompt overrides the node's", async () => {
    const h = createHarness();
    h.hermes.script.autoReply = () => hermesResult();
    const res = await h.post(GPU_ROUTES.hermesGenerate, {
      prompt: "hi",
      max_tokens: 8,
      system_prompt: "Answer in French.",
    });
    expect(res.status).toBe(200);
    expect(h.hermes.script.calls[0]?.input.systemPrompt).toBe("Answer in French.");
  });

  it("POST /v1/hermes/critique builds the seed's critique prompt with twice the budget", async () => {
    const h = createHarness();
    h.hermes.script.autoReply = () =>
      hermesResult("The stop is too tight.", { finishReason: "length" });
    const res = await h.post(GPU_ROUTES.hermesCritique, {
      proposal: SAMPLE_PROPOSAL,
      max_length: 100,
    });
    expect(res.status).toBe(200);
    const input = h.hermes.script.calls[0]?.input;
    expect(input?.prompt).toBe(critiquePrompt(SAMPLE_PROPOSAL));
    expect(input?.maxTokens).toBe(200);
    // Where the context cannot hold twice the budget, the caller's own budget is the floor.
    expect(input?.minTokens).toBe(100);
    expect(input?.systemPrompt).toBe("SYSTEM PROMPT");
    const body = HermesGenerateResponse.parse(await res.json());
    expect(body.text).toBe("The stop is too tight.");
    expect(body.finish_reason).toBe("length");
  });

  it("POST /v1/phi3/generate returns the proposal, the raw text and timings", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.phi3Generate, {
      prompt: "AAPL long, stop 2%",
      max_tokens: 128,
    });
    const call = await h.phi3.script.nextCall();
    expect(call.input).toEqual({ prompt: "AAPL long, stop 2%", maxTokens: 128 });
    h.clock.ms += 25;
    call.finish(phi3Result());
    const res = await pending;
    expect(res.status).toBe(200);
    const body = Phi3GenerateResponse.parse(await res.json());
    expect(body.proposal).toEqual(SAMPLE_PROPOSAL);
    expect(JSON.parse(body.raw)).toEqual(SAMPLE_PROPOSAL);
    expect(body.model).toBe("scripted-phi3");
    expect(body.timings).toEqual({ queue_ms: 0, prompt_ms: 5, generate_ms: 11, total_ms: 25 });
  });

  it("GET /v1/health reports both models, the device, memory and queues", async () => {
    const h = createHarness({ ready: false });
    const gpuHermes = new (await import("./scripted-runtime.ts")).ScriptedHermes(
      2,
      { kind: "cuda", name: "NVIDIA Test GPU" },
      "Hermes-3-Test",
    );
    gpuHermes.vramReading = { usedMiB: 6100, totalMiB: 24576 };
    h.registry.hermes.setFileExists(true);
    h.registry.hermes.markReady(gpuHermes);
    h.registry.phi3.setFileExists(true);
    h.registry.phi3.markReady(h.phi3);

    const res = await h.get(GPU_ROUTES.health);
    expect(res.status).toBe(200);
    expect(res.headers.get(REQUEST_ID_HEADER)).toMatch(/^[0-9a-f-]{36}$/);
    const body = GpuNodeHealth.parse(await res.json());
    expect(body).toMatchObject({
      status: "ok",
      hermes_loaded: true,
      phi3_loaded: true,
      phi3_model_file_exists: true,
      device: "cuda",
      device_name: "NVIDIA Test GPU",
      memory: { rss_mib: 300, vram_used_mib: 6100, vram_total_mib: 24576 },
      version: "9.9.9-test",
    });
    expect(body.models.hermes).toEqual({
      state: "ready",
      loaded: true,
      path: "/models/hermes/test.gguf",
      name: "Hermes-3-Test",
      file_exists: true,
      queue: { running: 0, waiting: 0, capacity: 10 },
    });
    expect(body.models.phi3.queue).toEqual({ running: 0, waiting: 0, capacity: 9 });
  });

  it("health on CPU has no VRAM figures", async () => {
    const h = createHarness();
    const body = GpuNodeHealth.parse(await (await h.get(GPU_ROUTES.health)).json());
    expect(body.device).toBe("cpu");
    expect(body.memory).toEqual({ rss_mib: 300 });
  });

  it("HEAD /v1/health answers without a body", async () => {
    const h = createHarness();
    const res = await h.app.request("http://gpu-node.test/v1/health", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  it("serves its own OpenAPI document at /v1/openapi.json with every route of the contract", async () => {
    const h = createHarness({ token: "t0k" });
    expect((await h.app.request("http://gpu-node.test/v1/openapi.json")).status).toBe(401);
    const res = await h.get("/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown; responses: object }>>;
    };
    expect(doc.openapi).toBe("3.1.0");
    for (const route of [
      GPU_ROUTES.hermesGenerate,
      GPU_ROUTES.hermesCritique,
      GPU_ROUTES.phi3Generate,
      GPU_ROUTES.hermesGenerateStream,
      GPU_ROUTES.hermesCritiqueStream,
      GPU_ROUTES.phi3GenerateStream,
    ]) {
      expect(doc.paths[route]?.post?.requestBody, route).toBeDefined();
      expect(Object.keys(doc.paths[route]?.post?.responses ?? {})).toEqual(
        expect.arrayContaining(["200", "422", "429", "503"]),
      );
    }
    expect(doc.paths[GPU_ROUTES.health]?.get).toBeDefined();
    expect(JSON.stringify(doc.paths[GPU_ROUTES.hermesGenerateStream])).toContain(
      "application/x-ndjson",
    );
  });

  it("replaces an unusable incoming request id with a fresh one", async () => {
    const h = createHarness();
    const res = await h.get(GPU_ROUTES.health, { [REQUEST_ID_HEADER]: "bad id with spaces" });
    expect(res.headers.get(REQUEST_ID_HEADER)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
