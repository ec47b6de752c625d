/**
 * 1. Edge overhead: the same Hermes call with 100 (and 1) connections, straight to the stand-in
 * GPU node and through the edge's Node entry in front of it, alternating in rounds so that a
 * noisy machine hits both alike. The difference is what the edge adds (validation, auth, request
 * ids, logging, the GPU client's HTTP hop).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import autocannon from "autocannon";
import { GPU_ROUTES } from "../gpu-node/contract.ts";
import { freePort } from "../test/support/process.ts";
import { firstJsonLine, spawnChild, waitForHttp } from "./lib/proc.ts";
import { round, summarize } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult } from "./lib/types.ts";

interface Run {
  target: "direct" | "edge";
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

function toRun(r: autocannon.Result, target: Run["target"], connections: number, n: number): Run {
  return {
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

export const edgeOverhead: Benchmark = {
  id: "edge-overhead",
  title: "Edge overhead (Node entry, stand-in GPU node)",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const seconds = opts.quick ? 1 : 10;
    const sequentialRequests = opts.quick ? 100 : 3000;
    const warmSeconds = opts.quick ? 0.5 : 2;
    const rounds = opts.quick ? 1 : 2;
    const dataDir = await mkdtemp(join(opts.scratch, "edge-"));
    const standIn = spawnChild(["bench/servers/stand-in.ts"], { GPU_NODE_TOKEN: TOKEN });
    const edgePort = await freePort();
    let edge: ReturnType<typeof spawnChild> | undefined;
    const runs: Run[] = [];
    const single = {
      direct: { times: [] as number[], seconds: 0, errors: 0 },
      edge: { times: [] as number[], seconds: 0, errors: 0 },
    };
    try {
      const { url: gpuUrl } = await firstJsonLine<{ url: string }>(standIn);
      edge = spawnChild(
        ["edge/node.ts"],
        {
          PORT: String(edgePort),
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
        { quietStdout: true },
      );
      const edgeUrl = `http://127.0.0.1:${edgePort}`;
      await waitForHttp(`${edgeUrl}/health`, edge);
      const direct = {
        url: `${gpuUrl}${GPU_ROUTES.hermesGenerate}`,
        body: { prompt: PROMPT, max_tokens: 16 },
        headers: { authorization: `Bearer ${TOKEN}` },
      };
      const viaEdge = {
        url: `${edgeUrl}/generate/hermes/`,
        body: { prompt: PROMPT, max_length: 16 },
        headers: {},
      };
      // Warm both paths (JIT, connection pools) before anything is recorded.
      await load(direct.url, direct.body, direct.headers, 100, warmSeconds);
      await load(viaEdge.url, viaEdge.body, viaEdge.headers, 100, warmSeconds);
      for (let n = 0; n < rounds; n++) {
        const order = n % 2 === 0 ? (["direct", "edge"] as const) : (["edge", "direct"] as const);
        for (const target of order) {
          const t = target === "direct" ? direct : viaEdge;
          opts.logger.info({ target, connections: 100, round: n }, "edge-overhead: load");
          const r = await load(t.url, t.body, t.headers, 100, seconds);
          runs.push(toRun(r, target, 100, n));
        }
      }
      // One connection: blocks of 100 requests, alternating, so drift hits both alike.
      await sequential(direct.url, direct.body, direct.headers, 20);
      await sequential(viaEdge.url, viaEdge.body, viaEdge.headers, 20);
      for (let done = 0; done < sequentialRequests; done += 100) {
        for (const target of ["direct", "edge"] as const) {
          const t = target === "direct" ? direct : viaEdge;
          const r = await sequential(t.url, t.body, t.headers, 100);
          single[target].times.push(...r.times);
          single[target].seconds += r.seconds;
          single[target].errors += r.errors;
        }
      }
    } finally {
      await edge?.stop();
      await standIn.stop();
      await rm(dataDir, { recursive: true, force: true });
    }

    const rows: BenchResult["tables"][number]["rows"] = [];
    const summary: Record<string, unknown> = {};
    for (const target of ["direct", "edge"] as const) {
      const x = single[target];
      const st = summarize(x.times);
      runs.push({
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
    for (const connections of [100, 1]) {
      const pick = (t: Run["target"]) =>
        runs.filter((r) => r.target === t && r.connections === connections);
      const d = pick("direct");
      const e = pick("edge");
      const agg = (rs: Run[]) => ({
        p50: mean(rs.map((r) => r.p50_ms)),
        p99: mean(rs.map((r) => r.p99_ms)),
        rps: mean(rs.map((r) => r.req_per_s)),
        errors: rs.reduce((s, r) => s + r.errors + r.non2xx, 0),
      });
      const a = agg(d);
      const b = agg(e);
      summary[`c${connections}`] = {
        direct: a,
        edge: b,
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
      rows.push([
        connections,
        "edge -> stand-in",
        round(b.p50),
        round(b.p99),
        round(b.rps),
        b.errors,
      ]);
      rows.push([
        connections,
        "**edge adds**",
        `**${round(b.p50 - a.p50)}**`,
        `**${round(b.p99 - a.p99)}**`,
        `${round((b.rps / a.rps) * 100)} % of direct`,
        "",
      ]);
    }
    return {
      id: "edge-overhead",
      title: this.title,
      command: `npm run bench -- --only edge-overhead${opts.quick ? " --quick" : ""}`,
      target: "edge adds < 2 ms p50 and < 10 ms p99 at 100 connections on 2 cores",
      tables: [
        {
          title: `POST /generate/hermes/ through the edge vs the stand-in's /v1/hermes/generate: 100 connections with autocannon (${seconds} s × ${rounds} round(s) each, means over rounds); 1 connection sequentially (${sequentialRequests} requests each, blocks of 100 alternating)`,
          columns: ["connections", "path", "p50 ms", "p99 ms", "req/s", "errors"],
          rows,
        },
      ],
      notes: [
        "autocannon, the edge (tsx edge/node.ts, PGlite, LOG_LEVEL=info to /dev/null) and the stand-in each run in their own process on the same machine, so they compete for its cores.",
      ],
      data: { seconds, rounds, sequential_requests: sequentialRequests, runs, summary },
    };
  },
};
