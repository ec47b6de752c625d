/**
 * Phi-3 continuous batching and the sampler, in one run:
 *
 * (a) Aggregate tokens/s of the tiny Phi-3 (GroupQueryAttention + MatMulNBits, one thread) at
 *     1 / 4 / 8 concurrent clients, each sending requests back to back: the batched engine
 *     (parallel 4: one ONNX run per step for all running sequences) against the same engine one
 *     request at a time (parallel 1), both loaded in this process, rounds alternating.
 * (b) Sampling per token over 32,064 logits (T=0 argmax; T=0.8 alone, with top-k 40 / top-p
 *     0.95, and under a grammar-like mask), wall and CPU µs.
 */
import { join } from "node:path";
import { writeTinyPhi3 } from "../gpu-node/models/tiny/phi3.ts";
import {
  loadPhi3,
  maskAllows,
  mulberry32,
  type Phi3OnnxRuntime,
  TokenSampler,
} from "../gpu-node/phi3/index.ts";
import { previousSampler } from "./lib/previous-sampler.ts";
import { round, summarize } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult, Table } from "./lib/types.ts";

const LOGITS = 32_064;
const TOKENIZER_SIZE = 32_011;
const PROMPT = "NVDA fell 6% on earnings. Adjust my long position and say why, request";

interface Round {
  tokens: number;
  ms: number;
  latencies: number[];
}

async function clients(runtime: Phi3OnnxRuntime, count: number, each: number, maxTokens: number) {
  const signal = new AbortController().signal;
  const latencies: number[] = [];
  let tokens = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, client) => {
      for (let i = 0; i < each; i++) {
        const t0 = performance.now();
        const r = await runtime.generateRaw(
          {
            prompt: `${PROMPT} ${client}-${i}`,
            maxTokens,
            sampling: { temperature: 0.8, seed: client * 1000 + i },
          },
          { signal },
        );
        latencies.push(performance.now() - t0);
        tokens += r.usage.completion_tokens;
      }
    }),
  );
  return { tokens, ms: performance.now() - started, latencies } satisfies Round;
}

async function throughput(opts: BenchOptions): Promise<{ table: Table; data: object }> {
  const dir = join(opts.scratch, "phi3-batch");
  await writeTinyPhi3(dir, { seed: 5 });
  const load = (parallel: number) =>
    loadPhi3({ modelDir: dir, device: "cpu", threads: 1, parallel }, {});
  const batched = await load(4);
  const serial = await load(1);
  const maxTokens = opts.quick ? 48 : 128;
  const each = opts.quick ? 2 : 6;
  const rounds = opts.quick ? 1 : 3;
  const levels = [1, 4, 8];
  const acc = new Map<string, Round>();
  try {
    // Warm-up: sessions, grammar matchers, JIT.
    await clients(batched, 4, 1, maxTokens);
    await clients(serial, 2, 1, maxTokens);
    for (let r = 0; r < rounds; r++) {
      for (const n of levels) {
        const order = r % 2 === 0 ? ["batched", "serial"] : ["serial", "batched"];
        for (const mode of order) {
          const runtime = mode === "batched" ? batched : serial;
          const result = await clients(runtime, n, each, maxTokens);
          const key = `${mode}:${n}`;
          const sum = acc.get(key) ?? { tokens: 0, ms: 0, latencies: [] };
          sum.tokens += result.tokens;
          sum.ms += result.ms;
          sum.latencies.push(...result.latencies);
          acc.set(key, sum);
        }
      }
    }
  } finally {
    await batched.dispose();
    await serial.dispose();
  }
  const tps = (key: string) => {
    const a = acc.get(key) as Round;
    return (a.tokens / a.ms) * 1000;
  };
  const rows = levels.map((n) => {
    const b = acc.get(`batched:${n}`) as Round;
    const s = acc.get(`serial:${n}`) as Round;
    return [
      n,
      round(tps(`serial:${n}`)),
      round(tps(`batched:${n}`)),
      `${round(tps(`batched:${n}`) / tps(`serial:${n}`))}×`,
      `${round(tps(`batched:${n}`) / tps("batched:1"))}×`,
      round(summarize(s.latencies).p50),
      round(summarize(b.latencies).p50),
    ];
  });
  return {
    table: {
      title: `(a) Tiny Phi-3, aggregate tokens/s (T=0.8, max_length ${maxTokens}, ${each} requests per client per round, ${rounds} round(s), one thread)`,
      columns: [
        "clients",
        "one at a time (parallel 1) tokens/s",
        "batched (parallel 4) tokens/s",
        "batched / one at a time",
        "batched / batched at 1 client",
        "one at a time p50 latency (ms)",
        "batched p50 latency (ms)",
      ],
      rows,
    },
    data: Object.fromEntries([...acc].map(([k, v]) => [k, { tokens: v.tokens, ms: v.ms }])),
  };
}

function samplingCost(opts: BenchOptions): { table: Table; data: object } {
  const random = mulberry32(11);
  // Peaked like a real model's logits: a few strong tokens, a long tail.
  const pool = Array.from({ length: 8 }, () =>
    Float32Array.from({ length: LOGITS }, () => random() ** 6 * 20 - 5),
  );
  const mask = new Int32Array(Math.ceil(LOGITS / 32));
  for (let id = 0; id < TOKENIZER_SIZE; id++) {
    if (id % 3 !== 0) mask[id >>> 5] = (mask[id >>> 5] as number) | (1 << (id & 31));
  }
  const cases = [
    { name: "T=0 (argmax)", params: { temperature: 0, topK: 0, topP: 1 }, mask: undefined },
    { name: "T=0 (argmax), masked", params: { temperature: 0, topK: 0, topP: 1 }, mask },
    { name: "T=0.8", params: { temperature: 0.8, topK: 0, topP: 1 }, mask: undefined },
    { name: "T=0.8, masked", params: { temperature: 0.8, topK: 0, topP: 1 }, mask },
    { name: "T=0.8, top-k 40", params: { temperature: 0.8, topK: 40, topP: 1 }, mask: undefined },
    { name: "T=0.8, top-p 0.95, masked", params: { temperature: 0.8, topK: 0, topP: 0.95 }, mask },
    {
      name: "T=0.8, top-k 40 + top-p 0.95, masked",
      params: { temperature: 0.8, topK: 40, topP: 0.95 },
      mask,
    },
  ];
  const sampler = new TokenSampler(LOGITS);
  const draws = opts.quick ? 300 : 3000;
  const time = (step: (i: number) => void) => {
    for (let i = 0; i < 200; i++) step(i);
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < draws; i++) {
      const t0 = performance.now();
      step(i);
      times.push((performance.now() - t0) * 1000);
    }
    const cpu = process.cpuUsage(cpu0);
    return { ...summarize(times), cpu: (cpu.user + cpu.system) / draws };
  };
  // The machine's pace in the same run: one bare pass over the logits (their maximum).
  let sink = 0;
  const pass = time((i) => {
    const logits = pool[i % pool.length] as Float32Array;
    let max = Number.NEGATIVE_INFINITY;
    for (let id = 0; id < TOKENIZER_SIZE; id++)
      if ((logits[id] as number) > max) max = logits[id] as number;
    sink += max;
  });
  const rows: (string | number | null)[][] = [
    [
      "one bare pass over the logits (their maximum), for scale",
      null,
      round(pass.p50),
      round(pass.mean),
      round(pass.cpu),
      null,
      null,
    ],
  ];
  for (const { name, params, mask: m } of cases) {
    const rng = mulberry32(3);
    const now = time((i) => {
      sampler.prepare(pool[i % pool.length] as Float32Array, TOKENIZER_SIZE, m, params, rng);
      sampler.next();
    });
    // The previous sampler had no top-k.
    const before =
      params.topK > 0
        ? undefined
        : time((i) => {
            const allowed = m ? (id: number) => maskAllows(m, id) : undefined;
            previousSampler(
              pool[i % pool.length] as Float32Array,
              TOKENIZER_SIZE,
              allowed,
              params,
              rng,
            ).next();
          });
    rows.push([
      name,
      before ? round(before.p50) : null,
      round(now.p50),
      round(now.mean),
      round(now.cpu),
      before ? `${round(now.p50 / before.p50)}×` : null,
      round(now.p50 / pass.p50),
    ]);
  }
  if (sink === 0.5) rows.push(["(unreachable)"]);
  return {
    table: {
      title: `(b) Sampling one token over ${LOGITS.toLocaleString("en")} logits (${draws} draws each; mask: 2 of 3 ids allowed; before = the previous sampler, same run)`,
      columns: [
        "sampling",
        "before: wall p50 (µs)",
        "now: wall p50 (µs)",
        "now: wall mean (µs)",
        "now: CPU mean (µs)",
        "now / before (p50)",
        "now, in bare passes (p50)",
      ],
      rows,
    },
    data: { rows },
  };
}

export const phi3Batching: Benchmark = {
  id: "phi3-batching",
  title: "Phi-3 continuous batching and sampling",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const sampling = samplingCost(opts);
    const batch = await throughput(opts);
    return {
      id: "phi3-batching",
      title: "Phi-3 continuous batching and sampling",
      command: "npm run bench -- --only phi3-batching",
      target: "at 4 clients ≥ 2.5× one client's aggregate tokens/s; sampling ≤ 0.3 ms per token",
      tables: [batch.table, sampling.table],
      notes: [
        "Both engines are the same code in the same process; one at a time is parallel 1 (each request prefilled and decoded alone, as before batching).",
        "The tiny model's forward pass is far cheaper than a real Phi-3's, so per-sequence work (grammar mask, sampling, planning) weighs more here than it would on the real model.",
      ],
      data: { throughput: batch.data, sampling: sampling.data },
    };
  },
};
