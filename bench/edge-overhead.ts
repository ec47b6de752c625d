/**
 * 1. Edge overhead, measured where a shared 2-core machine can measure it honestly:
 * - CPU time per request of each server process (read from /proc, all threads of its process
 *   group, ns resolution): the edge's Node entry, a minimal Hono forwarder doing the same job
 *   (bench/servers/forwarder.ts), and the stand-in GPU node alone (direct). CPU time does not
 *   grow with the machine's load the way latency does.
 * - Open-loop latency at fixed rates (200 and 500 requests/s, autocannon's overallRate with its
 *   coordinated-omission correction), each path in turn.
 * The three paths alternate in rounds so that drift hits them alike.
 */

import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import autocannon from "autocannon";
import { GPU_ROUTES } from "../gpu-node/contract/index.ts";
import {
  freePort,
  type Proc,
  startTsx,
  waitForHttp,
  waitForJsonLine,
} from "../test/support/process.ts";
import { round } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult } from "./lib/types.ts";

const TOKEN = "bench-token";
const PROMPT = "Summarise the risk of holding NVDA through earnings in one sentence.";
const edgeBody = { prompt: PROMPT, max_length: 16 };

type PathName = "direct" | "forwarder" | "edge";

interface Target {
  name: PathName;
  label: string;
  url: string;
  body: unknown;
  headers: Record<string, string>;
  /** Process group whose CPU is this path's own (the stand-in's for direct). */
  pgid: number;
}

/** CPU time (ns) of every thread of every process in a process group. */
function groupCpuNs(pgid: number): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // Fields after the command name (which may contain spaces) start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid) continue;
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const sched = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8");
        total += Number(sched.split(" ")[0]);
      }
    } catch {
      // A process or thread that ended meanwhile.
    }
  }
  return total;
}

function cannon(t: Target, opts: Partial<autocannon.Options>): Promise<autocannon.Result> {
  return autocannon({
    url: t.url,
    method: "POST",
    headers: { "content-type": "application/json", ...t.headers },
    body: JSON.stringify(t.body),
    ...opts,
  } as autocannon.Options);
}

interface CpuRun {
  path: PathName;
  round: number;
  requests: number;
  /** The path's own process group (edge, forwarder; stand-in for direct). */
  own_us: number;
  /** The stand-in's share of the same requests. */
  stand_in_us: number;
  errors: number;
}

interface RateRun {
  path: PathName;
  rate: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  requests: number;
  errors: number;
}

async function cpuRun(
  t: Target,
  standInPgid: number,
  requests: number,
  n: number,
): Promise<CpuRun> {
  const own0 = groupCpuNs(t.pgid);
  const si0 = groupCpuNs(standInPgid);
  const r = await cannon(t, { connections: 4, amount: requests });
  const own = (groupCpuNs(t.pgid) - own0) / 1000 / requests;
  const si = (groupCpuNs(standInPgid) - si0) / 1000 / requests;
  return {
    path: t.name,
    round: n,
    requests,
    own_us: own,
    stand_in_us: t.name === "direct" ? own : si,
    errors: r.errors + r.non2xx,
  };
}

async function rateRun(t: Target, rate: number, seconds: number): Promise<RateRun> {
  const r = await cannon(t, { connections: 64, overallRate: rate, duration: seconds });
  return {
    path: t.name,
    rate,
    p50_ms: r.latency.p50,
    p90_ms: r.latency.p90,
    p99_ms: r.latency.p99,
    max_ms: r.latency.max,
    requests: r.requests.total,
    errors: r.errors + r.non2xx,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export const edgeOverhead: Benchmark = {
  id: "edge-overhead",
  title: "Edge overhead (Node entry vs a minimal forwarder vs direct, stand-in GPU node)",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const set = {
      cpuRequests: opts.quick ? 500 : 4000,
      rounds: opts.quick ? 1 : 3,
      rateSeconds: opts.quick ? 2 : 10,
      rates: [200, 500],
    };
    const children: Proc[] = [];
    let dataDir: string | undefined;
    const cpu: CpuRun[] = [];
    const rates: RateRun[] = [];
    try {
      const standIn = startTsx(["bench/servers/stand-in.ts"], { GPU_NODE_TOKEN: TOKEN });
      children.push(standIn);
      const { url: gpuUrl } = await waitForJsonLine<{ url: string }>(standIn);
      const forwarder = startTsx(["bench/servers/forwarder.ts"], {
        FORWARD_TO: gpuUrl,
        GPU_NODE_TOKEN: TOKEN,
      });
      children.push(forwarder);
      const { url: fwdUrl } = await waitForJsonLine<{ url: string }>(forwarder);
      dataDir = await mkdtemp(join(opts.scratch, "edge-"));
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
        { stdout: "ignore", keepChars: 20_000 },
      );
      children.push(edge);
      const edgeUrl = `http://127.0.0.1:${port}`;
      await waitForHttp(`${edgeUrl}/health`, edge);

      const pg = (c: Proc) => c.child.pid as number;
      const targets: Target[] = [
        {
          name: "direct",
          label: "stand-in direct",
          url: `${gpuUrl}${GPU_ROUTES.hermesGenerate}`,
          body: { prompt: PROMPT, max_tokens: 16 },
          headers: { authorization: `Bearer ${TOKEN}` },
          pgid: pg(standIn),
        },
        {
          name: "forwarder",
          label: "minimal Hono forwarder (fetch) -> stand-in",
          url: `${fwdUrl}/generate/hermes/`,
          body: edgeBody,
          headers: {},
          pgid: pg(forwarder),
        },
        {
          name: "edge",
          label: "edge (Node entry) -> stand-in",
          url: `${edgeUrl}/generate/hermes/`,
          body: edgeBody,
          headers: {},
          pgid: pg(edge),
        },
      ];
      // Warm up (JIT, keep-alive pools).
      for (const t of targets) await cannon(t, { connections: 4, amount: opts.quick ? 200 : 2000 });
      for (let n = 0; n < set.rounds; n++) {
        const order = n % 2 === 0 ? targets : [...targets].reverse();
        for (const t of order) {
          opts.logger.info({ path: t.name, round: n }, "edge-overhead: CPU per request");
          cpu.push(await cpuRun(t, pg(standIn), set.cpuRequests, n));
        }
      }
      for (const rate of set.rates) {
        for (const t of targets) {
          opts.logger.info({ path: t.name, rate }, "edge-overhead: open loop");
          rates.push(await rateRun(t, rate, set.rateSeconds));
        }
      }
    } finally {
      for (const c of children.reverse()) await c.stop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }

    const cpuOf = (p: PathName) => median(cpu.filter((r) => r.path === p).map((r) => r.own_us));
    const standInOf = (p: PathName) =>
      median(cpu.filter((r) => r.path === p).map((r) => r.stand_in_us));
    const summary = {
      edge_us: cpuOf("edge"),
      forwarder_us: cpuOf("forwarder"),
      direct_us: cpuOf("direct"),
      edge_vs_forwarder: cpuOf("edge") / cpuOf("forwarder"),
    };
    const labels: Record<PathName, string> = {
      direct: "stand-in direct",
      forwarder: "minimal Hono forwarder -> stand-in",
      edge: "edge (Node entry) -> stand-in",
    };
    const errors = (p: PathName) =>
      cpu.filter((r) => r.path === p).reduce((s, r) => s + r.errors, 0);
    return {
      id: "edge-overhead",
      title: this.title,
      command: `npm run bench -- --only edge-overhead${opts.quick ? " --quick" : ""}`,
      target:
        "edge CPU per proxied request ≤ 1.2 × the minimal forwarder's (same run); p99 < 10 ms at 200 req/s open loop",
      tables: [
        {
          title: `CPU time per POST /generate/hermes/ (the path's own processes, all threads, from /proc schedstat; median of ${set.rounds} round(s) of ${set.cpuRequests} requests at 4 connections, paths alternating)`,
          columns: [
            "path",
            "own CPU µs/request",
            "stand-in CPU µs/request",
            "× forwarder",
            "errors",
          ],
          rows: (["direct", "forwarder", "edge"] as const).map((p) => [
            labels[p],
            round(cpuOf(p)),
            round(standInOf(p)),
            p === "direct" ? "" : `**${round(cpuOf(p) / cpuOf("forwarder"))}**`,
            errors(p),
          ]),
        },
        {
          title: `Open-loop latency at fixed rates (autocannon overallRate, 64 connections, ${set.rateSeconds} s each, corrected for coordinated omission)`,
          columns: ["req/s", "path", "p50 ms", "p90 ms", "p99 ms", "max ms", "requests", "errors"],
          rows: rates.map((r) => [
            r.rate,
            labels[r.path],
            r.p50_ms,
            r.p90_ms,
            r.path === "edge" ? `**${r.p99_ms}**` : r.p99_ms,
            r.max_ms,
            r.requests,
            r.errors,
          ]),
        },
      ],
      notes: [
        "The load generator (autocannon, in the bench process), the stand-in GPU node and the measured server each run in their own process on the same machine. The edge logs every request at info (to /dev/null), PGlite, no JSONL mirror; the forwarder does no validation, auth, request ids, logging or database.",
        "autocannon reports latency in whole milliseconds.",
      ],
      data: { ...set, cpu, rates, summary },
    };
  },
};
