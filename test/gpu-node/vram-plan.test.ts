/**
 * The worst-case VRAM plan, item by item, on the real models' shapes (Hermes-3-Llama-3.1-8B:
 * 32 layers, 32 heads, 8 KV heads, head 128, n_embd 4096, n_ff 14336, vocab 128256; Phi-3-mini-4k:
 * 32 layers, 32 KV heads, head 96, hidden 3072, vocab 32064, context 4096, fp16 on CUDA), and
 * gathered from the tiny model files the way the node gathers them at start-up.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TINY_HERMES_SHAPE, writeTinyHermes } from "../../gpu-node/models/tiny/hermes.ts";
import { writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";
import { parseGpuNodeSettings } from "../../gpu-node/settings.ts";
import { gatherVramInputs } from "../../gpu-node/vram-inputs.ts";
import {
  CUDA_RUNTIME_ALLOWANCE_MIB,
  type HermesShape,
  type Phi3Shape,
  planVram,
  vramPlanRefusal,
  vramPlanSummary,
} from "../../gpu-node/vram-plan.ts";

const MIB = 1024 * 1024;
const HERMES_8B: HermesShape = {
  fileBytes: 4_920_739_232,
  layers: 32,
  heads: 32,
  kvHeads: 8,
  headDim: 128,
  embd: 4096,
  ff: 14_336,
  vocab: 128_256,
};
const PHI3_MINI: Phi3Shape = {
  fileBytes: 2_300_000_000,
  layers: 32,
  kvHeads: 32,
  headDim: 96,
  hidden: 3072,
  vocab: 32_064,
  contextLength: 4096,
  elementBytes: 2,
};
const WATCHDOG = 10_500;

const item = (plan: ReturnType<typeof planVram>, name: string) =>
  plan.items.find((i) => i.item === name)?.mib;

describe("planVram", () => {
  // One Hermes sequence and a whole Phi-3 context (no PHI3_KV_TOKENS bound): the worst case the
  // first round's settings had, which a 12 GB card cannot hold.
  const defaults = planVram({
    hermes: { shape: HERMES_8B, contextSize: 6144, parallel: 1 },
    phi3: { shape: PHI3_MINI },
    budget: { mib: 12_288, source: "card" },
    watchdogThresholdMiB: WATCHDOG,
  });

  it("Hermes' KV cache: context x parallel x layers x KV heads x head dim x K,V x f16", () => {
    // 6144 x 32 x 8 x 128 x 2 x 2 B = 768 MiB (128 KiB per token).
    expect(item(defaults, "hermes_kv_cache")).toBe(768);
    const two = planVram({
      hermes: { shape: HERMES_8B, contextSize: 6144, parallel: 2 },
      watchdogThresholdMiB: WATCHDOG,
    });
    expect(item(two, "hermes_kv_cache")).toBe(1536);
  });

  it("weights are the files' sizes; compute buffers come from the micro-batch", () => {
    expect(item(defaults, "hermes_weights")).toBe(Math.ceil(4_920_739_232 / MIB));
    expect(item(defaults, "phi3_weights")).toBe(Math.ceil(2_300_000_000 / MIB));
    // logits 128256 x 512 x 4 B + (4 x 4096 + 2 x 14336) x 512 x 4 B
    expect(item(defaults, "hermes_compute_buffers")).toBe(
      Math.ceil((128_256 * 512 * 4 + (4 * 4096 + 2 * 14_336) * 512 * 4) / MIB),
    );
  });

  it("Phi-3's KV cache counts past and present together (no IO binding), 384 KiB per token each", () => {
    expect(item(defaults, "phi3_kv_cache")).toBe(2 * 4096 * 0.375);
    // ONNX Runtime's arena rounds its growth up to a power of two.
    const dynamic =
      (item(defaults, "phi3_kv_cache") ?? 0) + (item(defaults, "phi3_activations") ?? 0);
    expect(dynamic + (item(defaults, "onnxruntime_arena_slack") ?? 0)).toBe(4096);
  });

  it("adds everything up and compares with the budget and the watchdog", () => {
    const sum = defaults.items.reduce((total, i) => total + i.mib, 0);
    expect(defaults.total_mib).toBe(sum);
    expect(item(defaults, "cuda_runtime")).toBe(CUDA_RUNTIME_ALLOWANCE_MIB);
    expect(defaults.total_mib).toBeGreaterThan(WATCHDOG);
    expect(defaults.under_watchdog_threshold).toBe(false);
    expect(defaults.fits_budget).toBe(false);
    expect(vramPlanRefusal(defaults)).toMatch(
      /does not fit the card's 12,288 MiB: lower HERMES_CTX/,
    );
    expect(vramPlanSummary(defaults)).toContain("ABOVE the watchdog's 10,500 MiB");
  });

  it("the shipped defaults fit a 12 GB card: HERMES_PARALLEL=auto (2 on a GPU) and PHI3_KV_TOKENS=2048", () => {
    const shipped = parseGpuNodeSettings({}, { nvidiaGpu: true });
    expect(shipped.phi3.kvTokens).toBe(2048);
    const plan = planVram({
      hermes: { shape: HERMES_8B, contextSize: shipped.hermes.contextSize, parallel: 2 },
      phi3: { shape: PHI3_MINI, kvTokens: shipped.phi3.kvTokens },
      budget: { mib: 12_288, source: "card" },
      watchdogThresholdMiB: WATCHDOG,
    });
    // 2 x 2048 positions x 384 KiB: past and present of the whole batch.
    expect(item(plan, "phi3_kv_cache")).toBe(1536);
    expect(plan.fits_budget).toBe(true);
    expect(vramPlanRefusal(plan)).toBeUndefined();
    // Still above the watchdog's threshold at the very worst case (every cache full at once).
    expect(plan.under_watchdog_threshold).toBe(false);
    // One Hermes sequence and 1024 Phi-3 positions stay under it.
    const careful = planVram({
      hermes: { shape: HERMES_8B, contextSize: 6144, parallel: 1 },
      phi3: { shape: PHI3_MINI, kvTokens: 1024 },
      budget: { mib: 12_288, source: "card" },
      watchdogThresholdMiB: WATCHDOG,
    });
    expect(careful.under_watchdog_threshold).toBe(true);
  });

  it("a 24 GB card fits the defaults; a budget from VRAM_BUDGET_MIB is named, not printed", () => {
    const big = planVram({
      hermes: { shape: HERMES_8B, contextSize: 6144, parallel: 1 },
      phi3: { shape: PHI3_MINI },
      budget: { mib: 24_576, source: "card" },
      watchdogThresholdMiB: WATCHDOG,
    });
    expect(big.fits_budget).toBe(true);
    expect(vramPlanRefusal(big)).toBeUndefined();
    const set = planVram({
      hermes: { shape: HERMES_8B, contextSize: 131_072, parallel: 4 },
      budget: { mib: 12_345, source: "VRAM_BUDGET_MIB" },
      watchdogThresholdMiB: WATCHDOG,
    });
    expect(vramPlanRefusal(set)).toContain("does not fit VRAM_BUDGET_MIB");
    expect(vramPlanRefusal(set)).not.toContain("12,345");
  });

  it("nothing on the GPU: an empty plan, nothing to refuse", () => {
    const cpu = planVram({ watchdogThresholdMiB: WATCHDOG, budget: { mib: 1, source: "card" } });
    expect(cpu.items).toEqual([]);
    expect(cpu.total_mib).toBe(0);
    expect(vramPlanRefusal(cpu)).toBeUndefined();
    expect(vramPlanSummary(cpu)).toBe("VRAM plan: nothing runs on a GPU");
  });
});

describe("gatherVramInputs (what the node reads at start-up)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vram-plan-"));
    await writeTinyHermes(join(dir, "hermes.gguf"), { seed: 1 });
    await writeTinyPhi3(join(dir, "phi3-cuda-fp16"), { seed: 1 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const settings = (env: Record<string, string>) =>
    parseGpuNodeSettings(
      {
        HERMES_MODEL_PATH: join(dir, "hermes.gguf"),
        PHI3_MODEL_DIR: join(dir, "phi3-cuda-fp16"),
        ...env,
      },
      { nvidiaGpu: true },
    );

  it("reads both shapes from the files and the budget from the card", async () => {
    const input = await gatherVramInputs(settings({}), WATCHDOG, {
      nvidiaGpu: true,
      cardMiB: async () => 12_288,
      cudaProviderInstalled: () => true,
    });
    expect(input.hermes?.shape).toMatchObject({
      layers: TINY_HERMES_SHAPE.nLayers,
      heads: TINY_HERMES_SHAPE.nHead,
      kvHeads: TINY_HERMES_SHAPE.nHeadKv,
      headDim: TINY_HERMES_SHAPE.nEmbd / TINY_HERMES_SHAPE.nHead,
      ff: TINY_HERMES_SHAPE.nFf,
    });
    expect(input.hermes?.contextSize).toBe(6144);
    expect(input.phi3?.shape).toMatchObject({
      layers: 2,
      kvHeads: 2,
      headDim: 16,
      elementBytes: 2,
    });
    expect(input.phi3?.shape.fileBytes).toBeGreaterThan(0);
    expect(input.budget).toEqual({ mib: 12_288, source: "card" });
    expect(planVram(input).fits_budget).toBe(true);
  });

  it("VRAM_BUDGET_MIB wins over the card; 0 checks nothing; CPU models are left out", async () => {
    const deps = {
      nvidiaGpu: true,
      cardMiB: async () => 12_288,
      cudaProviderInstalled: () => true,
    };
    expect(
      (await gatherVramInputs(settings({ VRAM_BUDGET_MIB: "8000" }), WATCHDOG, deps)).budget,
    ).toEqual({
      mib: 8000,
      source: "VRAM_BUDGET_MIB",
    });
    expect(
      (await gatherVramInputs(settings({ VRAM_BUDGET_MIB: "0" }), WATCHDOG, deps)).budget,
    ).toBeUndefined();
    const cpu = await gatherVramInputs(
      settings({ HERMES_GPU: "cpu", PHI3_DEVICE: "cpu" }),
      WATCHDOG,
      deps,
    );
    expect(cpu.hermes).toBeUndefined();
    expect(cpu.phi3).toBeUndefined();
  });

  it("without a driver nothing is planned; an unreadable file is named, not guessed", async () => {
    const none = await gatherVramInputs(settings({}), WATCHDOG, { nvidiaGpu: false });
    expect(planVram(none).items).toEqual([]);
    const missing = await gatherVramInputs(
      settings({ HERMES_MODEL_PATH: join(dir, "nope.gguf"), HERMES_GPU: "cuda" }),
      WATCHDOG,
      { nvidiaGpu: true, cardMiB: async () => undefined, cudaProviderInstalled: () => false },
    );
    const plan = planVram(missing);
    expect(plan.complete).toBe(false);
    expect(plan.unknown?.[0]).toContain("nope.gguf");
    expect(plan.fits_budget).toBeNull();
  });
});
