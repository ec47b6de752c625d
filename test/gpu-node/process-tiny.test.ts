import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GPU_ROUTES,
  GpuNodeHealth,
  HermesGenerateResponse,
  Phi3GenerateResponse,
  TradeProposal,
} from "../../gpu-node/contract/index.ts";
import { writeTinyHermes } from "../../gpu-node/models/tiny/hermes.ts";
import { writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";
import { type RunningNode, startGpuNode } from "./process-helpers.ts";

const TOKEN = "tiny-models-token";
let dir: string;
let node: RunningNode;

async function call(path: string, body?: unknown) {
  return fetch(`${node.baseUrl}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gpu-node-tiny-"));
  await writeTinyHermes(join(dir, "hermes", "tiny.gguf"), { seed: 1 });
  await writeTinyPhi3(join(dir, "phi3", "tiny"), { seed: 1 });
  node = await startGpuNode({
    GPU_NODE_TOKEN: TOKEN,
    MODELS_DIR: dir,
    HERMES_MODEL_PATH: join(dir, "hermes", "tiny.gguf"),
    HERMES_GPU: "cpu",
    HERMES_CTX: "1024",
    HERMES_THREADS: "1",
    PHI3_MODEL_DIR: join(dir, "phi3", "tiny"),
    PHI3_DEVICE: "cpu",
    PHI3_THREADS: "1",
    LOG_LEVEL: "info",
  });
  // Wait for the background loading to finish (progress shows in the log meanwhile).
  for (let i = 0; i < 600; i++) {
    const health = GpuNodeHealth.parse(await (await call(GPU_ROUTES.health)).json());
    if (health.status !== "loading") return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

afterAll(async () => {
  await node?.stop("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

describe("the GPU node process with tiny real models", () => {
  it("loads both models and reports ok", async () => {
    const health = GpuNodeHealth.parse(await (await call(GPU_ROUTES.health)).json());
    expect(health, JSON.stringify(health.models)).toMatchObject({
      status: "ok",
      hermes_loaded: true,
      phi3_loaded: true,
      phi3_model_file_exists: true,
      device: "cpu",
    });
    expect(node.stdout()).toMatch(/loading Hermes: \d+%/);
  });

  it("POST /v1/hermes/generate", async () => {
    const res = await call(GPU_ROUTES.hermesGenerate, { prompt: "Hello", max_tokens: 8 });
    expect(res.status).toBe(200);
    const body = HermesGenerateResponse.parse(await res.json());
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(8);
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("POST /v1/hermes/critique", async () => {
    const res = await call(GPU_ROUTES.hermesCritique, {
      proposal: { ticker: "MSFT", action: "pass", confidence: 0.4, rationale: "Flat." },
      max_length: 4,
    });
    expect(res.status).toBe(200);
    const body = HermesGenerateResponse.parse(await res.json());
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(8);
  });

  it("POST /v1/phi3/generate returns a schema-valid proposal", async () => {
    const res = await call(GPU_ROUTES.phi3Generate, { prompt: "AAPL long", max_tokens: 64 });
    expect(res.status).toBe(200);
    const body = Phi3GenerateResponse.parse(await res.json());
    expect(TradeProposal.parse(JSON.parse(body.raw))).toEqual(body.proposal);
  });

  it("exits 0 on SIGTERM after disposing the models", async () => {
    const exit = await node.stop("SIGTERM");
    expect(exit).toEqual({ code: 0, signal: null });
    expect(node.stdout()).toContain('"msg":"stopped"');
  });
});
