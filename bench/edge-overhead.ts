/**
 * 1. Edge overhead: the same Hermes call with 100 (and 1) connections, straight to the stand-in
 * GPU node and through the edge's Node entry in front of it, alternating in rounds so that a
 * noisy machine hits both alike. The difference is what the edge adds (validation, auth, request
 * ids, logging, the GPU client's HTTP hop).
 */

import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import autocannon from "autocannon";
import { GPU_ROUTES } from "../gpu-node/contract/index.ts";
import {
  freePort,
  REPO_ROOT,
  startProcess,
  startTsx,
  waitForHttp,
  waitForJsonLine,
} from "../test/support/process.ts";
import { round, summarize } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult } from "./lib/types.ts";

interface Run {
  /** "direct", or the front measured against it ("node" or "worker"). */
  target: string;
  front: Front["name"];
  connections: number;
  round: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  req_per_s: number;
  requests: number;
  errors: number;
  non2xx: number;
}

const TOKEN = "bench-token";
const PROMPT = "Summarise the risk of holding NVDA through earnings in one sentence.";

async function load(
  url: string,
  body: unknown,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: "POST",
    connections,
    duration: seconds,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

function toRun(
  r: autocannon.Result,
  front: Front["name"],
  target: string,
  connections: number,
  n: number,
): Run {
  return {
    front,
    target,
    connections,
    round: n,
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    mean_ms: r.latency.average,
    req_per_s: r.requests.average,
    requests: r.requests.total,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** One connection, one request at a time, timed with performance.now() (µs resolution; autocannon
 * reports whole milliseconds, too coarse for a sub-millisecond difference). */
async function sequential(
  url: string,
  body: unknown,
  headers: Record<string, string>,
  requests: number,
): Promise<{ times: number[]; seconds: number; errors: number }> {
  const times: number[] = [];
  let errors = 0;
  const payload = JSON.stringify(body);
  const started = performance.now();
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: payload,
    });
    await res.arrayBuffer();
    times.push(performance.now() - t0);
    if (!res.ok) errors++;
  }
  return { times, seconds: (performance.now() - started) / 1000, errors };
}

interface Target {
  url: string;
  body: unknown;
  headers: Record<string, string>;
}

interface Front {
  name: "node" | "worker";
  label: string;
  start(gpuUrl: string): Promise<{ target: Target; stop(): Promise<void> }>;
}

interface Settings {
  seconds: number;
  sequentialRequests: number;
  warmSeconds: number;
  rounds: number;
}

const edgeBody = { prompt: PROMPT, max_length: 16 };

/** The edge's Node entry: `tsx edge/node.ts`, PGlite, logging at info to /dev/null. */
const nodeFront = (scratch: string): Front => ({
  name: "node",
  label: "edge (Node entry) -> stand-in",
  async start(gpuUrl) {
    const dataDir = await mkdtemp(join(scratch, "edge-"));
    const port = await freePort();
    const edge = startTsx(
      ["edge/node.ts"],
      {
        PORT: String(port),
        HOST: "127.0.0.1",
        GPU_NODE_URL: gpuUrl,
        GPU_NODE_TOKEN: TOKEN,
        DATA_DIR: dataDir,
        DATABASE_URL: "",
        JSONL_MIRROR: "false",
        API_KEYS: "",
        // Production's level: every request is logged (to /dev/null here).
        LOG_LEVEL: "info",
      },
      // Logs of a server under load go to /dev/null: piping them here would cost our CPU.
      { stdout: "ignore", keepChars: 20_000 },
    );
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/health`, edge);
    return {
      target: { url: `${url}/generate/hermes/`, body: edgeBody, headers: {} },
      stop: async () => {
        await edge.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
});

/** The Worker entry under `wrangler dev` (workerd, local mode), settings as --var flags. */
const workerFront: Front = {
  name: "worker",
  label: "edge (Worker, wrangler dev) -> stand-in",
  async start(gpuUrl) {
    const port = await freePort();
    const key = "bench-key";
    const vars = [
      `GPU_NODE_URL:${gpuUrl}`,
      `GPU_NODE_TOKEN:${TOKEN}`,
      `API_KEYS:${key}`,
      "LOG_LEVEL:info",
    ];
    const proc = startProcess(
      `${REPO_ROOT}node_modules/.bin/wrangler`,
      [
        "dev",
        "--ip",
        "127.0.0.1",
        "--port",
        String(port),
        "--show-interactive-dev-session=false",
        ...vars.flatMap((v) => ["--var", v]),
      ],
      { WRANGLER_SEND_METRICS: "false" },
      // workerd prints a line per request: discarded, like the Node edge's log.
      { stdout: "ignore", keepChars: 5000 },
    );
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/health`, proc, 60_000);
    } catch (e) {
      await proc.stop();
      throw e;
    }
    return {
      target: {
        url: `${url}/generate/hermes/`,
        body: edgeBody,
        headers: { authorization: `Bearer ${key}` },
      },
      stop: async () => void (await proc.stop("SIGTERM", 5000)),
    };
  },
};

/** One front against the stand-in, alternating, at 100 connections and at 1. */
async function compare(
  opts: BenchOptions,
  front: Front,
  gpuUrl: string,
  set: Settings,
): Promise<Run[]> {
  const direct: Target = {
    url: `${gpuUrl}${GPU_ROUTES.hermesGenerate}`,
    body: { prompt: PROMPT, max_tokens: 16 },
    headers: { authorization: `Bearer ${TOKEN}` },
  };
  const started = await front.start(gpuUrl);
  const via = started.target;
  const runs: Run[] = [];
  const single = {
    direct: { times: [] as number[], seconds: 0, errors: 0 },
    [front.name]: { times: [] as number[], seconds: 0, errors: 0 },
  } as Record<string, { times: number[]; seconds: number; errors: number }>;
  try {
    // Warm both paths (JIT, connection pools) before anything is recorded.
    await load(direct.url, direct.body, direct.headers, 100, set.warmSeconds);
    await load(via.url, via.body, via.headers, 100, set.warmSeconds);
    for (let n = 0; n < set.rounds; n++) {
      const order = n % 2 === 0 ? ["direct", front.name] : [front.name, "direct"];
      for (const target of order) {
        const t = target === "direct" ? direct : via;
        opts.logger.info(
          { front: front.name, target, connections: 100, round: n },
          "edge-overhead: load",
        );
        runs.push(
          toRun(await load(t.url, t.body, t.headers, 100, set.seconds), front.name, target, 100, n),
        );
      }
    }
    // One connection: blocks of 100 requests, alternating, so drift hits both alike.
    await sequential(direct.url, direct.body, direct.headers, 20);
    await sequential(via.url, via.body, via.headers, 20);
    for (let done = 0; done < set.sequentialRequests; done += 100) {
      for (const target of ["direct", front.name]) {
        const t = target === "direct" ? direct : via;
        const r = await sequential(t.url, t.body, t.headers, 100);
        const acc = single[target] as { times: number[]; seconds: number; errors: number };
        acc.times.push(...r.times);
        acc.seconds += r.seconds;
        acc.errors += r.errors;
      }
    }
  } finally {
    await started.stop();
  }
  for (const [target, x] of Object.entries(single)) {
    const st = summarize(x.times);
    runs.push({
      front: front.name,
      target,
      connections: 1,
      round: 0,
      p50_ms: st.p50,
      p99_ms: st.p99,
      mean_ms: st.mean,
      req_per_s: x.times.length / x.seconds,
      requests: x.times.length,
      errors: x.errors,
      non2xx: 0,
    });
  }
  return runs;
}

export const edgeOverhead: Benchmark = {
  id: "edge-overhead",
  title: "Edge overhead (Node entry and Worker, stand-in GPU node)",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const set: Settings = {
      seconds: opts.quick ? 1 : 10,
      sequentialRequests: opts.quick ? 100 : 3000,
      warmSeconds: opts.quick ? 0.5 : 2,
      rounds: opts.quick ? 1 : 2,
    };
    const notes: string[] = [
      "autocannon, the edge and the stand-in each run in their own process on the same machine, so they compete for its cores. The Node edge logs at info to /dev/null (PGlite, no JSONL mirror); the Worker runs in workerd under `wrangler dev` (local mode, its request log discarded).",
    ];
    // The Worker needs wrangler and a few seconds to start: full runs only.
    const fronts = opts.quick ? [nodeFront(opts.scratch)] : [nodeFront(opts.scratch), workerFront];
    if (opts.quick)
      notes.push("--quick measures the Node entry only; the Worker is measured in full runs.");
    const standIn = startTsx(["bench/servers/stand-in.ts"], { GPU_NODE_TOKEN: TOKEN });
    const runs: Run[] = [];
    try {
      const { url: gpuUrl } = await waitForJsonLine<{ url: string }>(standIn, (l) => !!l.url);
      for (const front of fronts) {
        try {
          runs.push(...(await compare(opts, front, gpuUrl, set)));
        } catch (err) {
          if (front.name === "node") throw err;
          opts.logger.warn({ err }, "edge-overhead: the Worker could not be measured");
          notes.push(
            `The Worker could not be measured in this run: ${(err as Error).message.split("\n")[0]}`,
          );
        }
      }
    } finally {
      await standIn.stop();
    }

    const rows: BenchResult["tables"][number]["rows"] = [];
    const summary: Record<string, unknown> = {};
    const agg = (rs: Run[]) => ({
      p50: mean(rs.map((r) => r.p50_ms)),
      p99: mean(rs.map((r) => r.p99_ms)),
      rps: mean(rs.map((r) => r.req_per_s)),
      errors: rs.reduce((s, r) => s + r.errors + r.non2xx, 0),
    });
    for (const front of fronts) {
      for (const connections of [100, 1]) {
        const pick = (t: string) =>
          runs.filter(
            (r) => r.front === front.name && r.target === t && r.connections === connections,
          );
        if (pick(front.name).length === 0) continue;
        const a = agg(pick("direct"));
        const b = agg(pick(front.name));
        summary[`${front.name}_c${connections}`] = {
          direct: a,
          front: b,
          added_p50_ms: b.p50 - a.p50,
          added_p99_ms: b.p99 - a.p99,
        };
        rows.push([
          connections,
          "stand-in direct",
          round(a.p50),
          round(a.p99),
          round(a.rps),
          a.errors,
        ]);
        rows.push([connections, front.label, round(b.p50), round(b.p99), round(b.rps), b.errors]);
        rows.push([
          connections,
          `**${front.name === "node" ? "Node edge" : "Worker"} adds**`,
          `**${round(b.p50 - a.p50)}**`,
          `**${round(b.p99 - a.p99)}**`,
          `${round((b.rps / a.rps) * 100)} % of direct`,
          "",
        ]);
      }
    }
    return {
      id: "edge-overhead",
      title: this.title,
      command: `npm run bench -- --only edge-overhead${opts.quick ? " --quick" : ""}`,
      target: "edge adds < 2 ms p50 and < 10 ms p99 at 100 connections on 2 cores",
      tables: [
        {
          title: `POST /generate/hermes/ through the edge vs the stand-in's /v1/hermes/generate, each front paired with its own direct runs: 100 connections with autocannon (${set.seconds} s × ${set.rounds} round(s) each, means over rounds); 1 connection sequentially (${set.sequentialRequests} requests each, blocks of 100 alternating)`,
          columns: ["connections", "path", "p50 ms", "p99 ms", "req/s", "errors"],
          rows,
        },
      ],
      notes,
      data: { ...set, runs, summary },
    };
  },
};
