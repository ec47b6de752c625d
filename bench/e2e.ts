/**
 * 5. End to end: POST /propose_trade_adjustments/ on the edge (createApp served by
 * @hono/node-server, real Postgres or PGlite with 10 k seeded feedback rows, the JSONL mirror on
 * disk, pino logging at info to a file) in front of the real GPU node process with the tiny
 * models, on CPU. Each request's time is split with the edge's own timings (stored in
 * proposals.timings), the GPU node's timings (from its answers), and the time spent in the
 * mirror and logger (measured around their calls).
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { eq } from "drizzle-orm";
import pino from "pino";
import { proposals } from "../db/schema/index.ts";
import { createApp } from "../edge/app.ts";
import type { RecordMirror } from "../edge/deps.ts";
import { createHttpGpuClient, type GpuClient } from "../edge/gpu-client.ts";
import { createFileMirror } from "../edge/node-runtime/jsonl-mirror.ts";
import { parseEdgeSettings } from "../edge/settings.ts";
import { type Loaded, loadFeedback, openPglite, openPostgres } from "./augment.ts";
import { startTinyGpuNode } from "./lib/gpu-node.ts";
import { round, summarize } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult } from "./lib/types.ts";

interface Sample {
  wall: number;
  total: number;
  augment: number;
  phi3: number;
  phi3Node: number;
  db: number;
  hermes: number;
  hermesNode: number;
  mirror: number;
  logger: number;
  rest: number;
}

export const endToEnd: Benchmark = {
  id: "end-to-end",
  title: "End to end: /propose_trade_adjustments/ latency breakdown (tiny models, CPU)",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const dir = await mkdtemp(join(opts.scratch, "e2e-"));
    const node = await startTinyGpuNode(join(dir, "models"));
    const loaded: Loaded = opts.databaseUrl
      ? await openPostgres(opts.databaseUrl)
      : await openPglite();
    const seedRows = opts.quick ? 2_000 : 10_000;
    await loadFeedback(loaded, seedRows, opts.logger);
    const settings = parseEdgeSettings({
      GPU_NODE_URL: node.url,
      GPU_NODE_TOKEN: node.token,
      LOG_LEVEL: "info",
    });
    const spent = { mirror: 0, logger: 0, phi3Node: 0, hermesNode: 0 };
    const fileMirror = createFileMirror(join(dir, "data"), pino({ level: "silent" }));
    const mirror: RecordMirror = {
      appendLog: (l) => {
        const t = performance.now();
        fileMirror.appendLog(l);
        spent.mirror += performance.now() - t;
      },
      appendFeedback: (l) => fileMirror.appendFeedback(l),
    };
    const logStream = pino.destination({ dest: join(dir, "edge.log"), sync: false });
    const baseLogger = pino({ level: "info" }, logStream);
    // The logger is timed where the edge calls it (request lines, "proposal recorded").
    const timedLogger = new Proxy(baseLogger, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (
          typeof value !== "function" ||
          !["info", "warn", "error", "debug"].includes(String(prop))
        )
          return value;
        return (...args: unknown[]) => {
          const t = performance.now();
          const out = (value as (...a: unknown[]) => unknown).apply(target, args);
          spent.logger += performance.now() - t;
          return out;
        };
      },
    });
    const http = createHttpGpuClient({ baseUrl: node.url, token: node.token, timeoutMs: 60_000 });
    const gpu: GpuClient = {
      ...http,
      phi3Generate: async (body, o) => {
        const r = await http.phi3Generate(body, o);
        spent.phi3Node += r.timings.total_ms;
        return r;
      },
      hermesCritique: async (body, o) => {
        const r = await http.hermesCritique(body, o);
        spent.hermesNode += r.timings.total_ms;
        return r;
      },
    };
    const app = createApp({
      settings,
      db: loaded.handle.db,
      databaseKind: loaded.handle.kind,
      gpu,
      logger: timedLogger,
      clock: { now: () => new Date() },
      mirror,
      version: "bench",
      runtime: "node",
    });
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const requests = opts.quick ? 3 : 30;
    const maxLength = 64;
    const samples: Sample[] = [];
    try {
      for (let i = 0; i < requests + 1; i++) {
        Object.assign(spent, { mirror: 0, logger: 0, phi3Node: 0, hermesNode: 0 });
        const t0 = performance.now();
        const res = await fetch(`${url}/propose_trade_adjustments/`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            prompt: `Adjust the stop for my long NVDA position after a gap up on earnings, request ${i}.`,
            max_length: maxLength,
          }),
        });
        const body = (await res.json()) as { transaction_id?: string };
        const wall = performance.now() - t0;
        if (!res.ok || !body.transaction_id)
          throw new Error(`propose answered ${res.status}: ${JSON.stringify(body)}`);
        if (i < 1) continue;
        const [row] = await loaded.handle.db
          .select({ timings: proposals.timings })
          .from(proposals)
          .where(eq(proposals.transactionId, body.transaction_id));
        const t = row?.timings ?? {};
        const total = t.total_ms ?? Number.NaN;
        samples.push({
          wall,
          total,
          augment: t.augment_ms ?? Number.NaN,
          phi3: t.phi3_ms ?? Number.NaN,
          phi3Node: spent.phi3Node,
          db: t.db_ms ?? Number.NaN,
          hermes: t.hermes_ms ?? Number.NaN,
          hermesNode: spent.hermesNode,
          mirror: spent.mirror,
          logger: spent.logger,
          rest: wall - total,
        });
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fileMirror.close();
      logStream.flushSync?.();
      await loaded.destroy();
      await node.stop();
      await rm(dir, { recursive: true, force: true });
    }
    const col = (k: keyof Sample) => summarize(samples.map((s) => s[k]));
    const line = (label: string, k: keyof Sample, note = "") => {
      const s = col(k);
      return [label, round(s.p50), round(s.mean), round(s.p99), note];
    };
    const wall = col("wall");
    return {
      id: "end-to-end",
      title: this.title,
      command: `npm run bench -- --only end-to-end${opts.quick ? " --quick" : ""}`,
      target: "none set (a breakdown)",
      tables: [
        {
          title: `${requests} sequential requests (max_length ${maxLength}; ${loaded.handle.kind} with ${seedRows.toLocaleString("en")} seeded feedback rows; GPU node: tiny Phi-3 ONNX + tiny Hermes GGUF, 1 thread each)`,
          columns: ["part", "p50 ms", "mean ms", "p99 ms", "where it is measured"],
          rows: [
            line("client wall time", "wall", "fetch() in the bench"),
            line(
              "edge total (augment → Phi-3 → insert → Hermes)",
              "total",
              "proposals.timings.total_ms",
            ),
            line("database: augmentation query", "augment", "timings.augment_ms"),
            line("Phi-3 (edge view: HTTP + node)", "phi3", "timings.phi3_ms"),
            line("… Phi-3 inside the GPU node", "phi3Node", "node's timings.total_ms"),
            line("database: insert proposal", "db", "timings.db_ms"),
            line("Hermes critique (edge view)", "hermes", "timings.hermes_ms"),
            line("… Hermes inside the GPU node", "hermesNode", "node's timings.total_ms"),
            line("logging: JSONL mirror append", "mirror", "around mirror.appendLog"),
            line("logging: pino calls", "logger", "around logger.info/warn/error"),
            line("after total: critique update, mirror, response, HTTP", "rest", "wall − total_ms"),
          ],
        },
      ],
      notes: [
        `Mean client wall time ${round(wall.mean)} ms; the GPU node's share is its own total_ms for the two model calls.`,
      ],
      data: {
        requests,
        max_length: maxLength,
        seed_rows: seedRows,
        database: loaded.handle.kind,
        samples,
      },
    };
  },
};
