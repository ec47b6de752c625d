import { cp, mkdtemp, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceError } from "../../gpu-node/contract/errors.ts";
import { TradeProposal } from "../../gpu-node/contract/index.ts";
import { loadPhi3, type Phi3OnnxRuntime } from "../../gpu-node/phi3/index.ts";
import type { LoadProgress } from "../../gpu-node/runtime.ts";
import { makeTinyFolder, type TinyFolder, tradeSchemaValidator } from "./helpers.ts";

const never = () => ({ signal: new AbortController().signal });
const PROMPT = "Propose a stop adjustment for AAPL after a 3% gap down.";

describe("Phi-3 runtime on the tiny model (real onnxruntime-node)", () => {
  let folder: TinyFolder;
  let runtime: Phi3OnnxRuntime;
  const phases: LoadProgress[] = [];
  const validate = tradeSchemaValidator();

  beforeAll(async () => {
    folder = await makeTinyFolder(11);
    runtime = await loadPhi3(
      { modelDir: folder.dir, device: "cpu", threads: 1 },
      { onProgress: (p) => phases.push(p) },
    );
  });
  afterAll(async () => {
    await runtime?.dispose();
    await folder?.remove();
  });

  it("loads with progress through tokenizer, session and grammar compile", () => {
    expect(phases.map((p) => p.phase)).toEqual([
      "tokenizer",
      "session",
      "grammar compile",
      "ready",
    ]);
    expect(phases.map((p) => p.fraction)).toEqual(
      [...phases.map((p) => p.fraction)].sort((a, b) => a - b),
    );
    expect(runtime.device.kind).toBe("cpu");
    expect(runtime.modelName).toBe("model");
    expect(runtime.contextLength).toBe(1024);
  });

  it("generates a proposal that satisfies the schema, with usage and timings", async () => {
    const result = await runtime.generate({ prompt: PROMPT, maxTokens: 64 }, never());
    expect(validate(JSON.parse(result.raw))).toBe(true);
    expect(TradeProposal.parse(JSON.parse(result.raw))).toEqual(result.proposal);
    expect(result.usage.prompt_tokens).toBe(runtime.countPromptTokens(PROMPT));
    expect(result.usage.completion_tokens).toBeGreaterThanOrEqual(runtime.minMaxLength);
    expect(result.usage.completion_tokens).toBeLessThanOrEqual(64);
    expect(["stop", "length"]).toContain(result.finishReason);
    expect(result.timings.prompt_ms).toBeGreaterThan(0);
    expect(result.timings.generate_ms).toBeGreaterThanOrEqual(0);
  });

  it("greedy is deterministic, and a seed makes sampling reproducible", async () => {
    const greedy = () => runtime.generate({ prompt: PROMPT, maxTokens: 80 }, never());
    expect((await greedy()).raw).toBe((await greedy()).raw);
    const sample = (seed: number) =>
      runtime.generate(
        { prompt: PROMPT, maxTokens: 80, sampling: { temperature: 1, top_p: 0.95, seed } },
        never(),
      );
    const [a, b] = [await sample(5), await sample(5)];
    expect(a.raw).toBe(b.raw);
    const others = await Promise.all([6, 7, 8].map(sample));
    expect(others.some((o) => o.raw !== a.raw)).toBe(true);
  });

  it.each([true, false])(
    "the KV-cached path picks the same tokens as a full recompute (greedy, constrained=%s)",
    async (constrained) => {
      const input = { prompt: PROMPT, maxTokens: 48 };
      const cached = await runtime.generateRaw(input, never(), { constrained, kvCache: true });
      const recomputed = await runtime.generateRaw(input, never(), { constrained, kvCache: false });
      expect(cached.tokens.length).toBeGreaterThan(5);
      expect(recomputed.tokens).toEqual(cached.tokens);
    },
  );

  it("the smallest budget works and one token less is budget_too_small (422)", async () => {
    const min = runtime.minMaxLength;
    const ok = await runtime.generate({ prompt: PROMPT, maxTokens: min }, never());
    expect(ok.usage.completion_tokens).toBe(min);
    expect(validate(ok.proposal)).toBe(true);
    const error = await runtime
      .generate({ prompt: PROMPT, maxTokens: min - 1 }, never())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({
      code: "budget_too_small",
      status: 422,
      message: `max_length ${min - 1} is too small: the shortest valid proposal needs ${min} tokens`,
      details: { min_max_length: min },
    });
  });

  it("a prompt that does not fit the context with its budget is prompt_too_long (400)", async () => {
    const prompt = "the ".repeat(1500);
    const error = await runtime
      .generate({ prompt, maxTokens: 64 }, never())
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "prompt_too_long",
      status: 400,
      details: {
        prompt_tokens: runtime.countPromptTokens(prompt),
        context_length: 1024,
        max_length: 64,
      },
    });
    // Fits without the budget, not with it: still refused, since the budget could not be kept.
    const near = "the ".repeat(900);
    const tokens = runtime.countPromptTokens(near);
    expect(tokens).toBeLessThan(1024);
    await expect(
      runtime.generate({ prompt: near, maxTokens: 1024 - tokens + 1 }, never()),
    ).rejects.toMatchObject({
      code: "prompt_too_long",
    });
  });

  it("abort stops a generation promptly with the signal's reason", async () => {
    const before = new AbortController();
    before.abort(new Error("gone"));
    await expect(
      runtime.generate({ prompt: PROMPT, maxTokens: 500 }, { signal: before.signal }),
    ).rejects.toThrow("gone");

    const controller = new AbortController();
    const reason = new ServiceError("request_aborted", "client went away");
    // Random weights at temperature 1 write strings until the budget runs short, so 900 tokens
    // take far longer than 30 ms: resolving instead of rejecting would fail the test.
    const running = runtime.generateRaw(
      { prompt: PROMPT, maxTokens: 900, sampling: { temperature: 1, seed: 1 } },
      { signal: controller.signal },
      {
        constrained: true,
      },
    );
    setTimeout(() => controller.abort(reason), 30);
    await expect(running).rejects.toBe(reason);
    // The runtime is free again afterwards.
    const after = await runtime.generate({ prompt: PROMPT, maxTokens: 40 }, never());
    expect(validate(after.proposal)).toBe(true);
  });

  it("concurrent calls are batched and give the same results as sequential ones", async () => {
    const inputs = [1, 2, 3, 4].map((seed) => ({
      prompt: `${PROMPT} #${seed}`,
      maxTokens: 40,
      sampling: { temperature: 0.8, seed },
    }));
    const parallel = await Promise.all(inputs.map((input) => runtime.generate(input, never())));
    for (const [i, input] of inputs.entries()) {
      expect((await runtime.generate(input, never())).raw).toBe(parallel[i]?.raw);
    }
  });

  it("a call waiting for the runtime can give up without disturbing the one running", async () => {
    const long = { prompt: PROMPT, maxTokens: 600, sampling: { temperature: 1, seed: 4 } };
    const running = runtime.generate(long, never());
    const waiting = new AbortController();
    const queued = runtime.generate({ prompt: PROMPT, maxTokens: 40 }, { signal: waiting.signal });
    waiting.abort(new Error("timed out in queue"));
    await expect(queued).rejects.toThrow("timed out in queue");
    const first = await running;
    expect(first.raw).toBe((await runtime.generate(long, never())).raw);
  });

  it("unconstrained mode (for benchmarks) runs without the grammar", async () => {
    const result = await runtime.generateRaw(
      { prompt: PROMPT, maxTokens: 30, sampling: { temperature: 1, seed: 2 } },
      never(),
      {
        constrained: false,
      },
    );
    expect(result.tokens.length).toBeLessThanOrEqual(30);
    expect(() => validate(JSON.parse(result.raw))).toThrow(); // random weights do not write JSON
  });
});

describe("loading errors", () => {
  let folder: TinyFolder;
  let scratch: string;
  beforeAll(async () => {
    folder = await makeTinyFolder(3);
    scratch = await mkdtemp(join(tmpdir(), "phi3-broken-"));
  });
  afterAll(async () => {
    await folder.remove();
    await rm(scratch, { recursive: true, force: true });
  });

  const load = (modelDir: string, device: "cpu" | "cuda" = "cpu") =>
    loadPhi3({ modelDir, device, threads: 1 }, {});

  it("a missing folder names it and says how to get the model", async () => {
    await expect(load(join(scratch, "nope"))).rejects.toThrow(/nope.*npm run models:pull/);
  });

  it.each([
    "genai_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.onnx",
    "model.onnx.data",
  ])("a missing %s is a load error that names it", async (file) => {
    const dir = join(scratch, file.replaceAll(".", "_"));
    await cp(folder.dir, dir, { recursive: true });
    await unlink(join(dir, file));
    const error = (await load(dir).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain(join(dir, file));
    expect(error.message).toContain("npm run models:pull");
  });

  it("device cuda without a usable CUDA provider is a load error, not a silent CPU fallback", async () => {
    await expect(load(folder.dir, "cuda")).rejects.toThrow(/cuda/i);
  });

  it("dispose waits for the generation in flight", async () => {
    const runtime = await load(folder.dir);
    const running = runtime.generate(
      { prompt: PROMPT, maxTokens: 300, sampling: { temperature: 1, seed: 9 } },
      never(),
    );
    await runtime.dispose();
    expect(tradeSchemaValidator()((await running).proposal)).toBe(true);
  });

  it("an aborted load stops", async () => {
    const controller = new AbortController();
    controller.abort(new Error("shutdown"));
    await expect(
      loadPhi3({ modelDir: folder.dir, device: "cpu", threads: 1 }, { signal: controller.signal }),
    ).rejects.toThrow("shutdown");
  });
});
