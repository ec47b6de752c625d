/**
 * 4. Model throughput (CPU part): Hermes tokens/s through the GPU node's HTTP API (the real
 * process, tiny GGUF, 1 thread) against bare node-llama-cpp on the same file with the same
 * settings (1 thread, same context size, same system prompt, greedy, same max tokens), run in
 * alternation. The ratio is the cost of our path (HTTP, validation, queue, chat session set-up).
 * The GPU part (bench/gpu/) measures the llama.cpp engine itself on a real GPU.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { getLlama, LlamaChatSession, LlamaLogLevel } from "node-llama-cpp";
import { GPU_ROUTES, type HermesGenerateResponse } from "../gpu-node/contract/index.ts";
import { DEFAULT_HERMES_SYSTEM_PROMPT } from "../gpu-node/settings.ts";
import { HERMES_CTX, startTinyGpuNode } from "./lib/gpu-node.ts";
import { round } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult } from "./lib/types.ts";

const MAX_TOKENS = 128;

type ChatWrapper = LlamaChatSession["chatWrapper"];

export const hermesThroughput: Benchmark = {
  id: "hermes-throughput",
  title: "Hermes throughput: GPU node HTTP API vs bare node-llama-cpp (tiny GGUF, CPU)",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const dir = await mkdtemp(join(opts.scratch, "hermes-"));
    const node = await startTinyGpuNode(dir);
    const llama = await getLlama({
      gpu: false,
      build: "never",
      maxThreads: 1,
      logLevel: LlamaLogLevel.error,
    });
    const model = await llama.loadModel({ modelPath: node.hermesPath, gpuLayers: 0 });
    const context = await model.createContext({
      contextSize: HERMES_CTX,
      sequences: 1,
      threads: 1,
    });
    const rounds = opts.quick ? 2 : 20;
    // node-llama-cpp resolves the chat wrapper from the model's template in every new
    // LlamaChatSession; the third path resolves it once and passes it in (the best case).
    let resolvedWrapper: ChatWrapper | undefined;
    const acc = {
      node: { tokens: 0, ms: 0, nodeGenerateMs: 0, nodeTotalMs: 0 },
      bare: { tokens: 0, ms: 0, setupMs: 0, promptMs: 0, cleanupMs: 0 },
      reuse: { tokens: 0, ms: 0, setupMs: 0, promptMs: 0, cleanupMs: 0 },
    };
    try {
      for (let i = 0; i < rounds + 1; i++) {
        const prompt = `Assess this trade in two sentences: long MSFT at 410, stop 2%, round ${i}.`;
        const order = i % 2 === 0 ? ["node", "bare", "reuse"] : ["reuse", "bare", "node"];
        for (const path of order) {
          const t0 = performance.now();
          let tokens = 0;
          let nodeTimings: HermesGenerateResponse["timings"] | undefined;
          const phases = { setup: 0, prompt: 0, cleanup: 0 };
          if (path === "node") {
            const res = await fetch(`${node.url}${GPU_ROUTES.hermesGenerate}`, {
              method: "POST",
              headers: {
                authorization: `Bearer ${node.token}`,
                "content-type": "application/json",
              },
              body: JSON.stringify({
                prompt,
                max_tokens: MAX_TOKENS,
                sampling: { temperature: 0 },
              }),
            });
            if (!res.ok) throw new Error(`GPU node answered ${res.status}: ${await res.text()}`);
            const body = (await res.json()) as HermesGenerateResponse;
            tokens = body.usage.completion_tokens;
            nodeTimings = body.timings;
          } else {
            const s0 = performance.now();
            const sequence = context.getSequence();
            const session = new LlamaChatSession({
              contextSequence: sequence,
              systemPrompt: DEFAULT_HERMES_SYSTEM_PROMPT,
              autoDisposeSequence: false,
              ...(path === "reuse" && resolvedWrapper ? { chatWrapper: resolvedWrapper } : {}),
            });
            resolvedWrapper ??= session.chatWrapper;
            const s1 = performance.now();
            await session.promptWithMeta(prompt, {
              maxTokens: MAX_TOKENS,
              temperature: 0,
              onToken: (t) => {
                tokens += t.length;
              },
            });
            const s2 = performance.now();
            session.dispose({ disposeSequence: false });
            sequence.dispose();
            Object.assign(phases, {
              setup: s1 - s0,
              prompt: s2 - s1,
              cleanup: performance.now() - s2,
            });
          }
          const ms = performance.now() - t0;
          if (i < 1) continue; // warm-up
          if (path === "node") {
            acc.node.tokens += tokens;
            acc.node.ms += ms;
            acc.node.nodeGenerateMs +=
              (nodeTimings?.prompt_ms ?? 0) + (nodeTimings?.generate_ms ?? 0);
            acc.node.nodeTotalMs += nodeTimings?.total_ms ?? 0;
          } else {
            const a = path === "bare" ? acc.bare : acc.reuse;
            a.tokens += tokens;
            a.ms += ms;
            a.setupMs += phases.setup;
            a.promptMs += phases.prompt;
            a.cleanupMs += phases.cleanup;
          }
        }
      }
    } finally {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
      await node.stop();
      await rm(dir, { recursive: true, force: true });
    }
    const nodeTps = acc.node.tokens / (acc.node.ms / 1000);
    const bareTps = acc.bare.tokens / (acc.bare.ms / 1000);
    const reuseTps = acc.reuse.tokens / (acc.reuse.ms / 1000);
    const runtimeTps = acc.node.tokens / (acc.node.nodeGenerateMs / 1000);
    return {
      id: "hermes-throughput",
      title: this.title,
      command: `npm run bench -- --only hermes-throughput${opts.quick ? " --quick" : ""}`,
      target: "≥ 95 % of bare node-llama-cpp",
      tables: [
        {
          title: `Tokens/s per request, ${rounds} requests each (greedy, max ${MAX_TOKENS} tokens, 1 thread, alternating; wall time from request to answer)`,
          columns: ["path", "completion tokens", "wall ms per request", "tokens/s", "of bare"],
          rows: [
            [
              "bare node-llama-cpp (LlamaChatSession in-process)",
              acc.bare.tokens,
              round(acc.bare.ms / rounds),
              round(bareTps),
              "100 %",
            ],
            [
              "GPU node HTTP API (POST /v1/hermes/generate)",
              acc.node.tokens,
              round(acc.node.ms / rounds),
              round(nodeTps),
              `**${round((nodeTps / bareTps) * 100)} %**`,
            ],
            [
              "… bare: session set-up / promptWithMeta / clean-up ms",
              "",
              `${round(acc.bare.setupMs / rounds)} / ${round(acc.bare.promptMs / rounds)} / ${round(acc.bare.cleanupMs / rounds)}`,
              "",
              "",
            ],
            [
              "bare node-llama-cpp, chat wrapper resolved once (not our path: the best case)",
              acc.reuse.tokens,
              round(acc.reuse.ms / rounds),
              round(reuseTps),
              `${round((reuseTps / bareTps) * 100)} %`,
            ],
            [
              "… reused wrapper: session set-up / promptWithMeta / clean-up ms",
              "",
              `${round(acc.reuse.setupMs / rounds)} / ${round(acc.reuse.promptMs / rounds)} / ${round(acc.reuse.cleanupMs / rounds)}`,
              "",
              "",
            ],
            [
              "… node: its total_ms / its prompt + generate ms",
              "",
              `${round(acc.node.nodeTotalMs / rounds)} / ${round(acc.node.nodeGenerateMs / rounds)}`,
              round(runtimeTps),
              "",
            ],
          ],
        },
      ],
      notes: [
        "The tiny model decodes a token in well under a millisecond, so a fixed per-request cost (HTTP, JSON, validation, queueing, counting prompt tokens through the chat template) weighs far more here than it would against a real 8B model's ~4 ms per token on a GPU (bench/gpu) or ~100 ms on a CPU.",
      ],
      data: {
        rounds,
        max_tokens: MAX_TOKENS,
        acc,
        node_tokens_per_s: nodeTps,
        bare_tokens_per_s: bareTps,
        reuse_tokens_per_s: reuseTps,
        runtime_tokens_per_s: runtimeTps,
      },
    };
  },
};
