/**
 * 4a. Hermes serving: the GPU node's HTTP API (the real process, HERMES_PARALLEL=4) against
 * llama.cpp's own llama-server (`-np 4`), built from the source node-llama-cpp binds, on the same
 * tiny GGUF, 1 thread each, greedy, 1024 tokens of context per sequence. Interleaved: every case
 * runs on one server, then on the other (the order alternates by round), so the load of a shared
 * machine falls on both alike.
 *
 * Cases: one stream at 64 and at 256 new tokens (the difference gives the marginal cost of a
 * token, HTTP and prompt excluded); 4 and 8 concurrent clients of 64-token requests (aggregate
 * tokens/s). llama-server gets `ignore_eos` and `cache_prompt: false`; the node stops at <|im_end|>
 * (the tiny model rarely emits it), so costs are per generated token.
 *
 * A third table measures the per-token path in-process (no HTTP): our runtime's generation loop
 * on LlamaContextSequence.evaluate against a bare evaluate loop and against LlamaChatSession (the
 * path before this round), to show what the binding costs and what our loop adds.
 *
 * llama-server is built on first use of a full run (bench/lib/build-llama-server.sh, 15-30 min);
 * `--quick` never builds it and skips that side with a line saying so, as does
 * BENCH_LLAMA_SERVER=off.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaChatSession, LlamaLogLevel } from "node-llama-cpp";
import { GPU_ROUTES, type HermesGenerateResponse } from "../gpu-node/contract/index.ts";
import { loadHermes } from "../gpu-node/hermes/index.ts";
import { DEFAULT_HERMES_SYSTEM_PROMPT } from "../gpu-node/settings.ts";
import { processGroupCpuMs } from "./lib/cpu.ts";
import { startTinyGpuNode, type TinyGpuNode } from "./lib/gpu-node.ts";
import {
  BUILD_SCRIPT,
  buildLlamaServer,
  type LlamaServer,
  llamaServerBuilt,
  startLlamaServer,
} from "./lib/llama-server.ts";
import { round, summarize } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult, Table } from "./lib/types.ts";

const PARALLEL = 4;
const CONTEXT = 1024;

interface Sample {
  tokens: number;
  ms: number;
  ok: boolean;
  status: number;
}

interface Target {
  name: string;
  generate(prompt: string, maxTokens: number): Promise<Sample>;
  /** CPU time the server's processes have used so far, ms. */
  cpuMs(): number;
}

const groupCpu = (pid: number | undefined) => () => (pid ? processGroupCpuMs(pid) : Number.NaN);

function nodeTarget(node: TinyGpuNode): Target {
  return {
    name: `GPU node (HERMES_PARALLEL=${PARALLEL})`,
    cpuMs: groupCpu(node.proc.child.pid),
    async generate(prompt, maxTokens) {
      const t0 = performance.now();
      const res = await fetch(`${node.url}${GPU_ROUTES.hermesGenerate}`, {
        method: "POST",
        headers: { authorization: `Bearer ${node.token}`, "content-type": "application/json" },
        body: JSON.stringify({ prompt, max_tokens: maxTokens, sampling: { temperature: 0 } }),
      });
      if (!res.ok) {
        await res.arrayBuffer();
        return { tokens: 0, ms: performance.now() - t0, ok: false, status: res.status };
      }
      const body = (await res.json()) as HermesGenerateResponse;
      return {
        tokens: body.usage.completion_tokens,
        ms: performance.now() - t0,
        ok: true,
        status: res.status,
      };
    },
  };
}

/** The same ChatML frame the node builds, as text (llama-server parses the control tokens). */
const chatMl = (prompt: string) =>
  `<|im_start|>system\n${DEFAULT_HERMES_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n${prompt}<|im_end|>\n<|im_start|>assistant\n`;

function llamaTarget(server: LlamaServer): Target {
  return {
    name: `llama-server (-np ${PARALLEL})`,
    cpuMs: groupCpu(server.proc.child.pid),
    async generate(prompt, maxTokens) {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/completion`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          prompt: chatMl(prompt),
          n_predict: maxTokens,
          temperature: 0,
          ignore_eos: true,
          cache_prompt: false,
        }),
      });
      if (!res.ok) {
        await res.arrayBuffer();
        return { tokens: 0, ms: performance.now() - t0, ok: false, status: res.status };
      }
      const body = (await res.json()) as { tokens_predicted: number };
      return { tokens: body.tokens_predicted, ms: performance.now() - t0, ok: true, status: 200 };
    },
  };
}

interface CaseResult {
  samples: Sample[];
  wallMs: number;
  /** Server CPU time during the case. */
  cpuMs: number;
}

/** `clients` clients, each sending `requests` requests one after another. */
async function runCase(
  target: Target,
  clients: number,
  requests: number,
  maxTokens: number,
  round: number,
): Promise<CaseResult> {
  const samples: Sample[] = [];
  const cpu0 = target.cpuMs();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let r = 0; r < requests; r++) {
        const prompt = `Assess this trade: long MSFT at 410, stop 2% (round ${round}, client ${c}, request ${r}).`;
        samples.push(await target.generate(prompt, maxTokens));
      }
    }),
  );
  return { samples, wallMs: performance.now() - t0, cpuMs: target.cpuMs() - cpu0 };
}

interface CaseSpec {
  id: string;
  clients: number;
  requests: number;
  maxTokens: number;
}

export const hermesThroughput: Benchmark = {
  id: "hermes-throughput",
  title: "Hermes serving: GPU node vs llama-server on the same tiny GGUF (CPU, 1 thread)",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const notes: string[] = [];
    let withLlama = process.env.BENCH_LLAMA_SERVER !== "off";
    if (withLlama && !llamaServerBuilt()) {
      if (opts.quick) {
        withLlama = false;
        notes.push(
          `llama-server is not built: skipped its side (a full run builds it once with \`bash ${BUILD_SCRIPT.replace(/.*\/bench\//, "bench/")}\`, 15-30 min).`,
        );
      } else {
        opts.logger.info("building llama-server from node-llama-cpp's bundle (once, 15-30 min)");
        await buildLlamaServer();
      }
    } else if (!withLlama) {
      notes.push("BENCH_LLAMA_SERVER=off: skipped llama-server's side.");
    }

    const specs: CaseSpec[] = opts.quick
      ? [
          { id: "1 stream, 64 tokens", clients: 1, requests: 2, maxTokens: 64 },
          { id: "1 stream, 256 tokens", clients: 1, requests: 1, maxTokens: 256 },
          { id: "4 clients, 64 tokens", clients: 4, requests: 1, maxTokens: 64 },
          { id: "8 clients, 64 tokens", clients: 8, requests: 1, maxTokens: 64 },
        ]
      : [
          { id: "1 stream, 64 tokens", clients: 1, requests: 8, maxTokens: 64 },
          { id: "1 stream, 256 tokens", clients: 1, requests: 4, maxTokens: 256 },
          { id: "4 clients, 64 tokens", clients: 4, requests: 4, maxTokens: 64 },
          { id: "8 clients, 64 tokens", clients: 8, requests: 3, maxTokens: 64 },
        ];
    const rounds = opts.quick ? 1 : 3;
    const load = loadavg()[0] ?? 0;

    const dir = await mkdtemp(join(opts.scratch, "hermes-"));
    const node = await startTinyGpuNode(dir, {
      HERMES_PARALLEL: String(PARALLEL),
      HERMES_CTX: String(CONTEXT),
      HERMES_QUEUE_MAX: "16",
    });
    let server: LlamaServer | undefined;
    const results = new Map<string, CaseResult[]>();
    try {
      if (withLlama) {
        server = await startLlamaServer({
          modelPath: node.hermesPath,
          slots: PARALLEL,
          contextPerSlot: CONTEXT,
          threads: 1,
        });
      }
      const targets = [nodeTarget(node), ...(server ? [llamaTarget(server)] : [])];
      // Warm-up: one request each.
      for (const t of targets) await t.generate("warm up", 16);
      for (let r = 0; r < rounds; r++) {
        for (const spec of specs) {
          const order = r % 2 === 0 ? targets : [...targets].reverse();
          for (const target of order) {
            const key = `${target.name}|${spec.id}`;
            const outcome = await runCase(target, spec.clients, spec.requests, spec.maxTokens, r);
            results.set(key, [...(results.get(key) ?? []), outcome]);
          }
        }
      }
      const names = targets.map((t) => t.name);
      await server?.stop();
      server = undefined;
      const paths = await inProcess(node.hermesPath, opts.quick ? 3 : 12);
      const result = report(opts, specs, names, results, rounds, load, notes);
      result.tables.push(paths.table);
      result.data.in_process = paths.data;
      return result;
    } finally {
      await server?.stop();
      await node.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};

/** Per-token cost of three in-process paths over the same sequence, 256 new tokens, interleaved. */
async function inProcess(modelPath: string, rounds: number) {
  const llama = await getLlama({
    gpu: false,
    build: "never",
    maxThreads: 1,
    logLevel: LlamaLogLevel.error,
  });
  const runtime = await loadHermes(
    { modelPath, contextSize: CONTEXT, gpu: "cpu", parallel: 1, threads: 1 },
    {},
    { llama },
  );
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: CONTEXT, sequences: 1, threads: 1 });
  const sequence = context.getSequence();
  const perToken: Record<string, number[]> = { ours: [], bare: [], session: [] };
  const cpuPerToken: Record<string, number[]> = { ours: [], bare: [], session: [] };
  const N = 256;
  let chatWrapper: LlamaChatSession["chatWrapper"] | undefined;
  try {
    for (let r = 0; r < rounds + 1; r++) {
      const prompt = `Assess the trade, round ${r}.`;
      const order = r % 2 === 0 ? ["ours", "bare", "session"] : ["session", "bare", "ours"];
      for (const path of order) {
        await sequence.clearHistory();
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        let tokens = 0;
        if (path === "ours") {
          const result = await runtime.generate(
            { prompt, systemPrompt: DEFAULT_HERMES_SYSTEM_PROMPT, maxTokens: N },
            { signal: new AbortController().signal, onText: () => {} },
          );
          tokens = result.usage.completion_tokens;
        } else if (path === "bare") {
          const ids = runtime.promptTokens({ prompt, systemPrompt: DEFAULT_HERMES_SYSTEM_PROMPT });
          for await (const _token of sequence.evaluate(ids, { temperature: 0 })) {
            if (++tokens >= N) break;
          }
        } else {
          const session = new LlamaChatSession({
            contextSequence: sequence,
            systemPrompt: DEFAULT_HERMES_SYSTEM_PROMPT,
            autoDisposeSequence: false,
            ...(chatWrapper ? { chatWrapper } : {}),
          });
          chatWrapper ??= session.chatWrapper;
          await session.promptWithMeta(prompt, {
            maxTokens: N,
            temperature: 0,
            onToken: (t) => {
              tokens += t.length;
            },
          });
          session.dispose({ disposeSequence: false });
        }
        if (r > 0) {
          perToken[path]?.push(((performance.now() - t0) / tokens) * 1000);
          const cpu = process.cpuUsage(cpu0);
          cpuPerToken[path]?.push((cpu.user + cpu.system) / tokens);
        }
      }
    }
  } finally {
    await context.dispose();
    await model.dispose();
    await runtime.dispose();
    await llama.dispose();
  }
  const median = (values: number[] = []) => summarize(values).p50;
  const row = (label: string, path: string): Table["rows"][number] => [
    label,
    round(median(perToken[path])),
    `${round((median(perToken[path]) / median(perToken.bare)) * 100)} %`,
    round(median(cpuPerToken[path])),
    `${round((median(cpuPerToken[path]) / median(cpuPerToken.bare)) * 100)} %`,
  ];
  const rows: Table["rows"] = [
    row("bare `sequence.evaluate` loop (no text, no stop check)", "bare"),
    row("our runtime (evaluate + ChatML ids + detokenize + stop filter + onText)", "ours"),
    row("LlamaChatSession.promptWithMeta (chat wrapper resolved once)", "session"),
  ];
  return {
    table: {
      title: `In-process per-token path, ${N} new tokens, median of ${rounds} interleaved rounds (µs per token, prompt included)`,
      columns: ["path", "wall µs per token", "of bare", "CPU µs per token", "of bare"],
      rows,
    } satisfies Table,
    data: { wall_us: perToken, cpu_us: cpuPerToken },
  };
}

function report(
  opts: BenchOptions,
  specs: CaseSpec[],
  names: string[],
  results: Map<string, CaseResult[]>,
  rounds: number,
  load: number,
  notes: string[],
): BenchResult {
  const all = (name: string, spec: CaseSpec) => results.get(`${name}|${spec.id}`) ?? [];
  const samplesOf = (name: string, spec: CaseSpec) => all(name, spec).flatMap((r) => r.samples);
  const meanOf = (values: number[]) => summarize(values).mean;
  const [single64, single256, ...concurrent] = specs as [CaseSpec, CaseSpec, ...CaseSpec[]];

  // Marginal cost of one more generated token: the slope between the 64- and 256-token runs.
  const perToken = new Map<string, number>();
  const perTokenCpu = new Map<string, number>();
  const streamTable: Table = {
    title: `One stream (${rounds} rounds, interleaved; wall time per request from the client)`,
    columns: [
      "server",
      "ms per request, 64 new",
      "ms per request, 256 new",
      "tokens (64 / 256)",
      "wall µs per token (marginal)",
      "server CPU µs per token (marginal)",
      "tokens/s (256)",
    ],
    rows: names.map((name) => {
      const a = samplesOf(name, single64);
      const b = samplesOf(name, single256);
      const [msA, msB] = [meanOf(a.map((s) => s.ms)), meanOf(b.map((s) => s.ms))];
      const [tokA, tokB] = [meanOf(a.map((s) => s.tokens)), meanOf(b.map((s) => s.tokens))];
      const us = ((msB - msA) / (tokB - tokA)) * 1000;
      perToken.set(name, us);
      // CPU per request from each case's total, then the same slope.
      const cpuPerRequest = (spec: CaseSpec) => {
        const runs = all(name, spec);
        const n = runs.reduce((k, r) => k + r.samples.length, 0);
        return runs.reduce((t, r) => t + r.cpuMs, 0) / n;
      };
      const cpuUs = ((cpuPerRequest(single256) - cpuPerRequest(single64)) / (tokB - tokA)) * 1000;
      perTokenCpu.set(name, cpuUs);
      return [
        name,
        round(msA),
        round(msB),
        `${round(tokA)} / ${round(tokB)}`,
        round(us),
        round(cpuUs),
        round((tokB / msB) * 1000),
      ];
    }),
  };
  const aggregate = new Map<string, number>();
  const aggregateCpu = new Map<string, number>();
  const concurrentTable: Table = {
    title: "Concurrent clients, 64 new tokens per request (aggregate over each round's wall time)",
    columns: [
      "clients",
      "server",
      "requests",
      "errors (non-200)",
      "aggregate tokens/s",
      "server CPU µs per token",
      "p50 ms",
      "p99 ms",
    ],
    rows: concurrent.flatMap((spec) =>
      names.map((name) => {
        const runs = all(name, spec);
        const samples = runs.flatMap((r) => r.samples);
        const tokens = samples.reduce((n, s) => n + s.tokens, 0);
        const wall = runs.reduce((n, r) => n + r.wallMs, 0);
        const tps = (tokens / wall) * 1000;
        aggregate.set(`${name}|${spec.clients}`, tps);
        const cpuUs = (runs.reduce((n, r) => n + r.cpuMs, 0) / tokens) * 1000;
        aggregateCpu.set(`${name}|${spec.clients}`, cpuUs);
        const ms = summarize(samples.map((s) => s.ms));
        return [
          spec.clients,
          name,
          samples.length,
          samples.filter((s) => !s.ok).length,
          round(tps),
          round(cpuUs),
          round(ms.p50),
          round(ms.p99),
        ];
      }),
    ),
  };

  const [nodeName, llamaName] = names as [string, string | undefined];
  const verdicts: string[] = [];
  if (llamaName) {
    const gap = (m: Map<string, number>, suffix = "") =>
      (m.get(`${nodeName}${suffix}`) ?? Number.NaN) -
      (m.get(`${llamaName}${suffix}`) ?? Number.NaN);
    const ratio = (m: Map<string, number>, suffix: string) =>
      (m.get(`${nodeName}${suffix}`) ?? Number.NaN) /
      (m.get(`${llamaName}${suffix}`) ?? Number.NaN);
    const wallGap = gap(perToken);
    const cpuGap = gap(perTokenCpu);
    const ratio4 = ratio(aggregate, "|4");
    const cpu4 = gap(aggregateCpu, "|4");
    const met = (ok: boolean) => (ok ? "met" : "**missed**");
    verdicts.push(
      `Per-token cost, one stream: the node spends ${round(cpuGap)} µs more server CPU time than llama-server per generated token (target ≤ +100 µs): ${met(cpuGap <= 100)}. Judged by CPU time: on a shared machine the wall-time slope (${round(wallGap)} µs here) moves with other work by more than the gap itself.`,
      `4 clients: the node's aggregate is ${round(ratio4 * 100)} % of llama-server -np ${PARALLEL} (target ≥ 100 %): ${met(ratio4 >= 1)}; it spends ${round(cpu4)} µs more CPU per token.`,
    );
  }
  return {
    id: "hermes-throughput",
    title: "Hermes serving: GPU node vs llama-server on the same tiny GGUF (CPU, 1 thread)",
    command: `npm run bench -- --only hermes-throughput${opts.quick ? " --quick" : ""}`,
    target: "per-token cost ≤ llama-server's + 100 µs; at 4 clients ≥ llama-server -np 4",
    tables: [streamTable, concurrentTable],
    notes: [
      ...verdicts,
      ...notes,
      `Both servers and the client share this machine's cores with each other and with other work (load average ${round(load)} at the start): the cases are interleaved so that noise falls on both.`,
      "The node reuses a sequence's cached prompt prefix (the system prompt); llama-server runs with cache_prompt: false. The marginal per-token figure excludes prompt processing either way.",
    ],
    data: {
      rounds,
      parallel: PARALLEL,
      context_per_sequence: CONTEXT,
      per_token_us: Object.fromEntries(perToken),
      per_token_cpu_us: Object.fromEntries(perTokenCpu),
      aggregate_cpu_us_per_token: Object.fromEntries(aggregateCpu),
      aggregate_tokens_per_s: Object.fromEntries(aggregate),
      samples: Object.fromEntries(results),
    },
  };
}
