/**
 * `npm run bench` (full) and `npm run bench -- --quick` (a smoke version of each; how long it
 * takes, measured, is in BENCHMARKS.md: about a minute on 2 busy cores, more under heavy load).
 * Options: `--only id,id` picks benchmarks; `--no-doc` leaves BENCHMARKS.md alone.
 * Env (this entry is the only reader): BENCH_DATABASE_URL (Postgres for the database benchmarks;
 * default postgres://postgres:pw@127.0.0.1:5432/test, "off" to skip Postgres), LOG_LEVEL.
 *
 * Results: bench/results/<id>.json (full) or bench/results/quick/<id>.json (quick, not committed),
 * each with the machine's facts. A full run also rewrites the tables in BENCHMARKS.md.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { z } from "zod";
import { LogLevel, parseEnv } from "../gpu-node/contract/env.ts";
import { REPO_ROOT } from "../test/support/process.ts";
import { augmentation } from "./augment.ts";
import { constrainedDecoding } from "./constrained.ts";
import { endToEnd } from "./e2e.ts";
import { edgeOverhead } from "./edge-overhead.ts";
import { hermesThroughput } from "./hermes.ts";
import { machineFacts } from "./lib/machine.ts";
import { renderResult, replaceSection } from "./lib/report.ts";
import type { Benchmark, BenchResult } from "./lib/types.ts";
import { phi3Batching } from "./phi3-batch.ts";
import { streaming } from "./streaming.ts";
import { structuredOutput } from "./structured.ts";

const BENCHMARKS: Benchmark[] = [
  edgeOverhead,
  augmentation,
  constrainedDecoding,
  phi3Batching,
  hermesThroughput,
  endToEnd,
  streaming,
  structuredOutput,
];

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    "no-doc": { type: "boolean", default: false },
  },
});
const quick = values.quick ?? false;
const only = values.only?.split(",").map((s) => s.trim());
const selected = BENCHMARKS.filter((b) => !only || only.includes(b.id));
if (only && selected.length !== only.length) {
  const known = BENCHMARKS.map((b) => b.id).join(", ");
  process.stderr.write(`unknown benchmark in --only ${values.only}; known: ${known}\n`);
  process.exit(2);
}

const env = parseEnv(
  z.object({
    BENCH_DATABASE_URL: z.string().default("postgres://postgres:pw@127.0.0.1:5432/test"),
    LOG_LEVEL: LogLevel.default("info"),
  }),
  process.env,
);
const logger = pino({
  level: env.LOG_LEVEL,
  transport: undefined,
  base: { svc: "bench" },
});
const databaseUrl = env.BENCH_DATABASE_URL === "off" ? undefined : env.BENCH_DATABASE_URL;
const machine = machineFacts();
const scratch = await mkdtemp(join(tmpdir(), "bench-"));
const outDir = join(REPO_ROOT, "bench", "results", quick ? "quick" : "");
await mkdir(outDir, { recursive: true });

const started = performance.now();
const results: BenchResult[] = [];
let failed = 0;
try {
  for (const bench of selected) {
    const t0 = performance.now();
    logger.info({ bench: bench.id, quick }, `${bench.title}: running`);
    try {
      const result = await bench.run({ quick, logger, databaseUrl, scratch });
      const seconds = Math.round((performance.now() - t0) / 100) / 10;
      results.push(result);
      await writeFile(
        join(outDir, `${bench.id}.json`),
        `${JSON.stringify({ ...result, machine, quick, seconds }, null, 2)}\n`,
      );
      logger.info({ bench: bench.id, seconds }, `${bench.title}: done`);
      process.stdout.write(`\n## ${result.title}\n\n${renderResult(result, machine)}\n\n`);
    } catch (err) {
      failed++;
      logger.error({ bench: bench.id, err }, `${bench.title}: failed`);
    }
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}

if (!quick && !values["no-doc"] && results.length) {
  const path = join(REPO_ROOT, "BENCHMARKS.md");
  let doc = await readFile(path, "utf8").catch(() => "");
  for (const r of results) doc = replaceSection(doc, r.id, renderResult(r, machine));
  await writeFile(path, doc);
}
const total = Math.round((performance.now() - started) / 100) / 10;
logger.info({ seconds: total, failed }, "benchmarks finished");
process.exit(failed ? 1 : 0);
