/**
 * The Hermes runtime with the real node-llama-cpp on CPU (1 thread) and the tiny generated model.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import type { Llama, LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getLlamaForDevice, loadHermes } from "../../gpu-node/hermes/index.ts";
import { CHATML_TEMPLATE, writeTinyHermes } from "../../gpu-node/models/tiny/hermes.ts";
import {
  GpuNodeError,
  type HermesOptions,
  type HermesRuntime,
  type LoadProgress,
} from "../../gpu-node/runtime.ts";

let dir: string;
let modelPath: string;
let llama: Llama;
const runtimes: HermesRuntime[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hermes-rt-"));
  modelPath = join(dir, "hermes-tiny.gguf");
  await writeTinyHermes(modelPath, { seed: 11 });
  llama = await getLlamaForDevice("cpu", { threads: 1 });
});
afterAll(async () => {
  for (const r of runtimes) await r.dispose();
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function load(
  overrides: Partial<HermesOptions> = {},
  onProgress?: (p: LoadProgress) => void,
) {
  const runtime = await loadHermes(
    { modelPath, contextSize: 1024, gpu: "cpu", parallel: 1, threads: 1, ...overrides },
    { onProgress },
    { llama },
  );
  runtimes.push(runtime);
  return runtime;
}

const never = () => new AbortController().signal;
const SYSTEM = "You are Hermes, a careful trading assistant.";

describe("loadHermes", () => {
  it("loads on the CPU with progress up to 1 and reports the model", async () => {
    const seen: LoadProgress[] = [];
    const runtime = await load({}, (p) => seen.push(p));
    expect(runtime.modelName).toBe("hermes-tiny");
    expect(runtime.device).toEqual({ kind: "cpu" });
    expect(runtime.parallel).toBe(1);
    expect(seen[0]).toEqual({ fraction: 0, phase: "reading metadata" });
    expect(seen.at(-1)).toEqual({ fraction: 1, phase: "ready" });
    const fractions = seen.map((p) => p.fraction);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(await runtime.vram?.()).toBeUndefined();
  });

  it("fails with a message naming the file when it is missing", async () => {
    const missing = join(dir, "hermes", "missing.gguf");
    await expect(load({ modelPath: missing })).rejects.toThrow(
      new RegExp(`${missing.replaceAll("/", "\\/")}.*npm run models:pull`),
    );
  });

  it("stops when the load is aborted", async () => {
    const controller = new AbortController();
    controller.abort(new Error("shutting down"));
    await expect(
      loadHermes(
        { modelPath, contextSize: 256, gpu: "cpu", parallel: 1, threads: 1 },
        { signal: controller.signal },
        { llama },
      ),
    ).rejects.toThrow("shutting down");
  });

  it("never falls back to the CPU when CUDA is requested", async () => {
    const outcome = await loadHermes(
      { modelPath, contextSize: 256, gpu: "cuda", parallel: 1, threads: 1 },
      {},
    ).then(
      async (runtime) => {
        const kind = runtime.device.kind;
        await runtime.dispose();
        return kind;
      },
      (err: Error) => err.message,
    );
    // On a machine with CUDA it must run there; everywhere else it is a load error.
    if (outcome !== "cuda") expect(outcome).toMatch(/CUDA was requested/);
  });
});

describe("generate", () => {
  let runtime: HermesRuntime;
  let model: LlamaModel;
  beforeAll(async () => {
    runtime = await load({ contextSize: 2048 });
    model = await llama.loadModel({ modelPath });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it("formats the turn with the model's ChatML template and system prompt", async () => {
    const prompt = "Should I adjust the stop on AAPL?";
    const result = await runtime.generate({ prompt, systemPrompt: SYSTEM, maxTokens: 3 }, never());
    const rendered = new Template(CHATML_TEMPLATE).render({
      messages: [
        { role: "system", content: SYSTEM },
        { role: "user", content: prompt },
      ],
      bos_token: "<s>",
      add_generation_prompt: true,
    });
    expect(rendered).toContain("<|im_start|>system\nYou are Hermes");
    expect(result.usage.prompt_tokens).toBe(model.tokenize(rendered, true).length);

    const other = await runtime.generate(
      { prompt, systemPrompt: "Be brief.", maxTokens: 1 },
      never(),
    );
    expect(other.usage.prompt_tokens).not.toBe(result.usage.prompt_tokens);
  });

  it("generates at most max_tokens new tokens and says why it stopped", async () => {
    for (const maxTokens of [1, 5, 17]) {
      const result = await runtime.generate(
        { prompt: "Assess the trade.", systemPrompt: SYSTEM, maxTokens },
        never(),
      );
      expect(result.usage.completion_tokens).toBeLessThanOrEqual(maxTokens);
      expect(result.usage.completion_tokens).toBeGreaterThan(0);
      if (result.finishReason === "length") expect(result.usage.completion_tokens).toBe(maxTokens);
      expect(result.text.length).toBeGreaterThan(0);
      expect(result.timings.prompt_ms).toBeGreaterThanOrEqual(0);
      expect(result.timings.generate_ms).toBeGreaterThanOrEqual(0);
    }
  });

  it("is deterministic: greedy by default, and for a given seed when sampling", async () => {
    const input = { prompt: "the market is up", systemPrompt: SYSTEM, maxTokens: 24 };
    const a = await runtime.generate(input, never());
    const b = await runtime.generate(input, never());
    expect(b.text).toBe(a.text);

    const sampled = (seed: number) =>
      runtime.generate({ ...input, sampling: { temperature: 1, top_p: 0.95, seed } }, never());
    const s1 = await sampled(42);
    const s2 = await sampled(42);
    const s3 = await sampled(43);
    expect(s2.text).toBe(s1.text);
    expect(s3.text).not.toBe(s1.text);
  });

  it("rejects a prompt longer than the context before generating, with the numbers", async () => {
    const prompt = "the trade risk ".repeat(2000);
    const err = await runtime
      .generate({ prompt, systemPrompt: SYSTEM, maxTokens: 16 }, never())
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(GpuNodeError);
    const e = err as GpuNodeError;
    expect(e.code).toBe("prompt_too_long");
    expect(e.status).toBe(400);
    const d = e.details as { prompt_tokens: number; context_length: number; max_length: number };
    expect(d.context_length).toBe(2048);
    expect(d.max_length).toBe(16);
    expect(d.prompt_tokens).toBeGreaterThan(2048);
    expect(e.message).toContain(String(d.prompt_tokens));
    expect(e.message).toContain("2048");

    // A prompt that fits, but not together with max_length, is refused the same way.
    const fits = await runtime.generate(
      { prompt: "hello", systemPrompt: SYSTEM, maxTokens: 1 },
      never(),
    );
    const tooMuch = 2048 - fits.usage.prompt_tokens + 1;
    await expect(
      runtime.generate({ prompt: "hello", systemPrompt: SYSTEM, maxTokens: tooMuch }, never()),
    ).rejects.toMatchObject({ code: "prompt_too_long", details: { max_length: tooMuch } });
    // And the runtime still works afterwards.
    await expect(
      runtime.generate({ prompt: "hello", systemPrompt: SYSTEM, maxTokens: 2 }, never()),
    ).resolves.toMatchObject({ finishReason: "length" });
  });

  it("with minTokens, shortens maxTokens to what the context has left instead of refusing", async () => {
    const fits = await runtime.generate(
      { prompt: "hello", systemPrompt: SYSTEM, maxTokens: 1 },
      never(),
    );
    const room = 2048 - fits.usage.prompt_tokens;
    const shortened = await runtime.generate(
      { prompt: "hello", systemPrompt: SYSTEM, maxTokens: room + 500, minTokens: 8 },
      never(),
    );
    expect(shortened.usage.completion_tokens).toBeLessThanOrEqual(room);
    // Below minTokens it is still refused.
    await expect(
      runtime.generate(
        { prompt: "hello", systemPrompt: SYSTEM, maxTokens: room + 500, minTokens: room + 1 },
        never(),
      ),
    ).rejects.toMatchObject({ code: "prompt_too_long" });
  });
});

describe("concurrency and aborts", () => {
  it("runs two requests at once with parallel 2", async () => {
    const runtime = await load({ parallel: 2, contextSize: 512 });
    expect(runtime.parallel).toBe(2);
    const [a, b] = await Promise.all([
      runtime.generate({ prompt: "first", systemPrompt: SYSTEM, maxTokens: 40 }, never()),
      runtime.generate({ prompt: "second one", systemPrompt: SYSTEM, maxTokens: 30 }, never()),
    ]);
    expect(a.usage.completion_tokens).toBeGreaterThan(0);
    expect(b.usage.completion_tokens).toBeGreaterThan(0);
    // Each alone gives the same text: the sequences do not disturb each other.
    const alone = await runtime.generate(
      { prompt: "first", systemPrompt: SYSTEM, maxTokens: 40 },
      never(),
    );
    expect(alone.text).toBe(a.text);
  });

  it("frees the slot of an aborted request, so the next one runs", async () => {
    const runtime = await load({ parallel: 1, contextSize: 4096 });
    const controller = new AbortController();
    const running = runtime.generate(
      { prompt: "go on", systemPrompt: SYSTEM, maxTokens: 3900 },
      controller.signal,
    );
    // A second request waits for the only slot.
    const queued = runtime.generate(
      { prompt: "next", systemPrompt: SYSTEM, maxTokens: 4 },
      AbortSignal.timeout(30_000),
    );
    setTimeout(() => controller.abort(), 50);
    await expect(running).rejects.toMatchObject({ code: "request_aborted", status: 499 });
    await expect(queued).resolves.toMatchObject({ usage: { completion_tokens: 4 } });
    // And again, with the full context available to the sequence.
    await expect(
      runtime.generate(
        { prompt: "again", systemPrompt: SYSTEM, maxTokens: 4 },
        AbortSignal.timeout(30_000),
      ),
    ).resolves.toMatchObject({ finishReason: "length" });
  });

  it("lets a waiting request give up without taking the slot", async () => {
    const runtime = await load({ parallel: 1, contextSize: 512 });
    const first = runtime.generate({ prompt: "one", systemPrompt: SYSTEM, maxTokens: 60 }, never());
    const waiting = new AbortController();
    const second = runtime.generate(
      { prompt: "two", systemPrompt: SYSTEM, maxTokens: 4 },
      waiting.signal,
    );
    waiting.abort(new GpuNodeError("gpu_node_timeout", 504, "deadline passed"));
    await expect(second).rejects.toMatchObject({ code: "gpu_node_timeout" });
    await expect(first).resolves.toMatchObject({ finishReason: "length" });
    await expect(
      runtime.generate(
        { prompt: "three", systemPrompt: SYSTEM, maxTokens: 3 },
        AbortSignal.timeout(30_000),
      ),
    ).resolves.toMatchObject({ usage: { completion_tokens: 3 } });
  });
});
