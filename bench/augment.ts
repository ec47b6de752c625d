/**
 * 2. Augmentation at scale: the edge's example-selection query (edge/services/augment.ts,
 * `selectExamples`, called as the edge calls it, through Drizzle) at 10 k, 100 k and 1 M
 * feedback rows in the real Postgres, and at 10 k / 100 k in PGlite, with EXPLAIN ANALYZE of the
 * same statement. Data: bench/data/feedback.ts (seeded), loaded with COPY into tables whose
 * secondary indexes are dropped for the load and rebuilt after it (as a bulk import would).
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { PGlite } from "@electric-sql/pglite";
import { type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/pglite";
import postgres from "postgres";
import { createPostgresDatabase } from "../db/client-postgres.ts";
import type { Database, DatabaseHandle } from "../db/database.ts";
import { migrateDatabase } from "../db/migrate.ts";
import * as schema from "../db/schema/index.ts";
import { selectExamples } from "../edge/services/augment.ts";
import { parseEdgeSettings } from "../edge/settings.ts";
import { FEEDBACK_COLUMNS, feedbackCsv, PROPOSAL_COLUMNS, queryPrompts } from "./data/feedback.ts";
import { round, summarize } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult } from "./lib/types.ts";

/** The reference "now" of the data and of the queries (fixed, so runs are comparable). */
export const NOW = new Date("2026-06-01T12:00:00Z");

export interface Loaded {
  handle: DatabaseHandle;
  /** Runs raw SQL (index management, ANALYZE). */
  exec(text: string): Promise<Record<string, unknown>[]>;
  copy(table: string, columns: string, csv: Iterable<string>): Promise<void>;
  destroy(): Promise<void>;
}

export async function openPostgres(url: string): Promise<Loaded> {
  const schemaName = `bench_${randomBytes(5).toString("hex")}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create schema ${schemaName}`);
  const handle = createPostgresDatabase({ url, schema: schemaName, max: 2 });
  await migrateDatabase(handle, schemaName);
  const raw = postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: `${schemaName},public` },
  });
  return {
    handle,
    exec: async (text) => [...(await raw.unsafe(text))] as Record<string, unknown>[],
    copy: async (table, columns, csv) => {
      const writable = await raw
        .unsafe(`copy ${table} (${columns}) from stdin with (format csv)`)
        .writable();
      await pipeline(Readable.from(csv), writable);
    },
    destroy: async () => {
      await handle.close();
      await raw.end();
      await admin.unsafe(`drop schema if exists ${schemaName} cascade`);
      await admin.end();
    },
  };
}

export async function openPglite(): Promise<Loaded> {
  const client = await PGlite.create(undefined);
  const handle: DatabaseHandle = {
    db: drizzle(client, { schema }) as unknown as Database,
    kind: "pglite",
    close: () => client.close(),
  };
  await migrateDatabase(handle);
  return {
    handle,
    exec: async (text) => (await client.query<Record<string, unknown>>(text)).rows,
    copy: async (table, columns, csv) => {
      // PGlite reads COPY data from a Blob at the virtual path /dev/blob.
      const blob = new Blob([...csv]);
      await client.query(`copy ${table} (${columns}) from '/dev/blob' with (format csv)`, [], {
        blob,
      });
    },
    destroy: () => client.close(),
  };
}

/** Loads `rows` seeded feedback rows with COPY, secondary indexes dropped and rebuilt around it. */
export async function loadFeedback(
  loaded: Loaded,
  rows: number,
  log: BenchOptions["logger"],
): Promise<{ loadS: number; indexS: number; examples: number }> {
  // Secondary indexes and the foreign key are dropped for the load and rebuilt after it.
  const defs = (await loaded.exec(
    "select indexname, indexdef from pg_indexes where schemaname = current_schema() and tablename = 'feedback_items' and indexname not like '%pkey'",
  )) as Array<{ indexname: string; indexdef: string }>;
  for (const d of defs) await loaded.exec(`drop index ${d.indexname}`);
  await loaded.exec(
    "alter table feedback_items drop constraint feedback_items_transaction_id_proposals_transaction_id_fk",
  );
  const t0 = performance.now();
  let examples = 0;
  const proposalsCsv: string[] = [];
  const feedbackCsvChunks: string[] = [];
  let done = 0;
  for (const chunk of feedbackCsv(rows, NOW)) {
    proposalsCsv.push(chunk.proposals);
    feedbackCsvChunks.push(chunk.feedback);
    examples += chunk.examples;
    done += 10_000;
    // Load in slices of 100k rows so memory stays flat at 1 M.
    if (proposalsCsv.length === 10 || done >= rows) {
      await loaded.copy("proposals", PROPOSAL_COLUMNS, proposalsCsv.splice(0));
      await loaded.copy("feedback_items", FEEDBACK_COLUMNS, feedbackCsvChunks.splice(0));
      log.info({ loaded: Math.min(done, rows) }, "augment: loading");
    }
  }
  const loadS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  for (const d of defs) await loaded.exec(d.indexdef);
  await loaded.exec(
    "alter table feedback_items add constraint feedback_items_transaction_id_proposals_transaction_id_fk foreign key (transaction_id) references proposals(transaction_id) on delete cascade not valid",
  );
  await loaded.exec("analyze");
  const indexS = (performance.now() - t1) / 1000;
  return { loadS, indexS, examples };
}

interface ScaleResult {
  db: "postgres" | "pglite";
  rows: number;
  examples: number;
  load_s: number;
  index_s: number;
  queries: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  max_ms: number;
  avg_examples_returned: number;
  indexes_used: string[];
  explain: string;
}

/** A Database whose execute() returns EXPLAIN ANALYZE of the statement instead of running it. */
function explainingDb(db: Database, sink: string[]): Database {
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== "execute") return Reflect.get(target, prop, receiver);
      return async (query: SQL) => {
        const res = await target.execute(sql`explain (analyze, buffers, costs off) ${query}`);
        const rows =
          (res as unknown as { rows?: Record<string, string>[] }).rows ??
          (res as unknown as Record<string, string>[]);
        for (const r of rows) sink.push(String(Object.values(r)[0]));
        return [];
      };
    },
  });
}

async function measure(
  opts: BenchOptions,
  kind: "postgres" | "pglite",
  rows: number,
  queries: number,
): Promise<ScaleResult> {
  const log = opts.logger.child({ bench: "augment", db: kind, rows });
  const loaded =
    kind === "postgres" ? await openPostgres(opts.databaseUrl as string) : await openPglite();
  try {
    const { loadS, indexS, examples } = await loadFeedback(loaded, rows, log);
    log.info(
      { load_s: round(loadS), index_s: round(indexS), examples },
      "augment: loaded, querying",
    );

    const settings = parseEdgeSettings({});
    const clock = { now: () => NOW };
    const prompts = queryPrompts(queries + 20);
    const ctx = { db: loaded.handle.db, settings, clock };
    for (const p of prompts.slice(0, 20)) await selectExamples(ctx, p);
    const times: number[] = [];
    let returned = 0;
    for (const p of prompts.slice(20)) {
      const s = performance.now();
      const got = await selectExamples(ctx, p);
      times.push(performance.now() - s);
      returned += got.length;
    }
    const plan: string[] = [];
    await selectExamples(
      { ...ctx, db: explainingDb(loaded.handle.db, plan) },
      prompts[20] as string,
    );
    const used = new Set<string>();
    for (const line of plan) {
      const m = /(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)/.exec(
        line,
      );
      if (m?.[1]) used.add(m[1]);
    }
    const s = summarize(times);
    return {
      db: kind,
      rows,
      examples,
      load_s: loadS,
      index_s: indexS,
      queries,
      p50_ms: s.p50,
      p99_ms: s.p99,
      mean_ms: s.mean,
      max_ms: s.max,
      avg_examples_returned: returned / queries,
      indexes_used: [...used].sort(),
      explain: plan.join("\n"),
    };
  } finally {
    await loaded.destroy();
  }
}

export const augmentation: Benchmark = {
  id: "augmentation",
  title: "Augmentation at scale (example selection query)",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const plan: Array<["postgres" | "pglite", number]> = opts.quick
      ? [
          ["pglite", 5_000],
          ["postgres", 5_000],
        ]
      : [
          ["postgres", 10_000],
          ["postgres", 100_000],
          ["postgres", 1_000_000],
          ["pglite", 10_000],
          ["pglite", 100_000],
        ];
    const queries = opts.quick ? 30 : 500;
    const results: ScaleResult[] = [];
    const notes: string[] = [];
    for (const [kind, rows] of plan) {
      if (kind === "postgres" && !opts.databaseUrl) {
        notes.push("Postgres skipped: BENCH_DATABASE_URL is off.");
        continue;
      }
      results.push(await measure(opts, kind, rows, queries));
    }
    const biggest = results.filter((r) => r.db === "postgres").at(-1);
    if (biggest) {
      notes.push(
        `EXPLAIN ANALYZE at ${biggest.rows.toLocaleString("en")} rows (Postgres):\n\n\`\`\`text\n${biggest.explain}\n\`\`\``,
      );
    }
    return {
      id: "augmentation",
      title: this.title,
      command: `npm run bench -- --only augmentation${opts.quick ? " --quick" : ""}`,
      target: "< 5 ms p99 at 1 M rows (Postgres)",
      tables: [
        {
          title: `selectExamples() per query, ${queries} seeded prompts after 20 warm-ups (client-side time: Drizzle, driver, round trip, ranking)`,
          columns: [
            "database",
            "feedback rows",
            "worked examples",
            "COPY load s",
            "index build s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "examples returned",
            "indexes used (EXPLAIN)",
          ],
          rows: results.map((r) => [
            r.db,
            r.rows.toLocaleString("en"),
            r.examples.toLocaleString("en"),
            round(r.load_s),
            round(r.index_s),
            round(r.p50_ms),
            round(r.p99_ms),
            round(r.max_ms),
            round(r.avg_examples_returned),
            r.indexes_used.join(", "),
          ]),
        },
      ],
      notes,
      data: { now: NOW.toISOString(), queries, results },
    };
  },
};
