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
import {
  extractTickers,
  promptQuery,
  rankExamples,
  selectExamples,
  type WorkedExample,
} from "../edge/services/augment.ts";
import { parseEdgeSettings } from "../edge/settings.ts";
import {
  FEEDBACK_COLUMNS,
  feedbackCsv,
  makePrompt,
  PROPOSAL_COLUMNS,
  queryPrompts,
  tickerUniverse,
} from "./data/feedback.ts";
import { round, seededRandom, summarize } from "./lib/stats.ts";
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

type Ctx = Parameters<typeof selectExamples>[0];

/**
 * The query this round replaced (commit 41d698c), kept here to be measured against in the same
 * run: `example_ticker = any(...)` under one LIMIT (reads and sorts every row of popular tickers)
 * and word ranking among the AUGMENT_SIMILARITY_POOL most recent corrections only.
 */
async function previousSelectExamples(ctx: Ctx, prompt: string): Promise<WorkedExample[]> {
  const k = ctx.settings.AUGMENT_MAX_EXAMPLES;
  const tickers = extractTickers(prompt);
  const since = new Date(
    ctx.clock.now().getTime() - ctx.settings.AUGMENT_MAX_AGE_DAYS * 86_400_000,
  ).toISOString();
  const query = promptQuery(prompt);
  const tickerList = `{${tickers.map((t) => `"${t}"`).join(",")}}`;
  const n = 20;
  const pool = 500;
  const rank = query ? sql`ts_rank(example_tsv, to_tsquery('simple', ${query}))` : sql`0`;
  const similar = query ? sql`union (select id from pool order by ${rank} desc limit ${n})` : sql``;
  const result = await ctx.db.execute<Record<string, unknown>>(sql`
    with pool as (
      select id, example_tsv from feedback_items
        where example_prompt is not null and received_at >= ${since}::timestamptz
        order by received_at desc limit ${pool}
    ),
    candidates as (
      (select id from feedback_items
        where example_prompt is not null and example_ticker = any(${tickerList}::text[])
          and received_at >= ${since}::timestamptz
        order by example_ticker, received_at desc limit ${n})
      ${similar}
      union
      (select id from pool limit ${n})
    )
    select f.id, f.example_prompt as prompt, f.corrected_proposal, f.example_ticker as ticker,
           f.received_at,
           coalesce(f.example_ticker = any(${tickerList}::text[]), false) as same_ticker,
           ${rank} as similarity
      from feedback_items f join candidates c on c.id = f.id`);
  const rows =
    (result as unknown as { rows?: Record<string, unknown>[] }).rows ??
    (result as unknown as Record<string, unknown>[]);
  return rankExamples(
    rows.map((r) => ({
      id: String(r.id),
      prompt: String(r.prompt ?? ""),
      correctedProposal: r.corrected_proposal as WorkedExample["correctedProposal"],
      ticker: (r.ticker as string | null) ?? null,
      receivedAt: new Date(r.received_at as string),
      sameTicker: Boolean(r.same_ticker),
      similarity: Number(r.similarity),
    })),
    k,
  );
}

/** The 10 most frequent tickers of the data (bench/data/feedback.ts draws low indexes most). */
const POPULAR = tickerUniverse().slice(0, 10);

/** The query mix: the seeded prompts, with every third one about one of the most popular tickers. */
function queryMix(n: number): { prompt: string; popular: boolean }[] {
  const rnd = seededRandom(7);
  return queryPrompts(n).map((prompt, i) =>
    i % 3 === 0
      ? { prompt: makePrompt(rnd, POPULAR[i % POPULAR.length] as string), popular: true }
      : { prompt, popular: false },
  );
}

interface QueryStats {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  popular_p99_ms: number;
  avg_examples_returned: number;
}

interface ScaleResult {
  db: "postgres" | "pglite";
  rows: number;
  examples: number;
  load_s: number;
  index_s: number;
  queries: number;
  current: QueryStats;
  previous: QueryStats;
  indexes_used: string[];
  explain: string;
  explain_previous: string;
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
    const mix = queryMix(queries + 20);
    const ctx = { db: loaded.handle.db, settings, clock };
    const variants = { current: selectExamples, previous: previousSelectExamples };
    for (const q of mix.slice(0, 20)) {
      await selectExamples(ctx, q.prompt);
      await previousSelectExamples(ctx, q.prompt);
    }
    const times = { current: [] as number[], previous: [] as number[] };
    const popular = { current: [] as number[], previous: [] as number[] };
    const returned = { current: 0, previous: 0 };
    // Alternating, in a different order each time, so the machine's noise hits both alike.
    for (const [i, q] of mix.slice(20).entries()) {
      const order: ("current" | "previous")[] =
        i % 2 === 0 ? ["current", "previous"] : ["previous", "current"];
      for (const name of order) {
        const s = performance.now();
        const got = await variants[name](ctx, q.prompt);
        const ms = performance.now() - s;
        times[name].push(ms);
        if (q.popular) popular[name].push(ms);
        returned[name] += got.length;
      }
    }
    // EXPLAIN ANALYZE of both statements for a prompt about the most popular ticker.
    const explainPrompt = makePrompt(seededRandom(3), POPULAR[0] as string);
    const plan: string[] = [];
    await selectExamples({ ...ctx, db: explainingDb(loaded.handle.db, plan) }, explainPrompt);
    const planPrevious: string[] = [];
    await previousSelectExamples(
      { ...ctx, db: explainingDb(loaded.handle.db, planPrevious) },
      explainPrompt,
    );
    const used = new Set<string>();
    for (const line of plan) {
      const m = /(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)/.exec(
        line,
      );
      if (m?.[1]) used.add(m[1]);
    }
    const stats = (name: "current" | "previous"): QueryStats => {
      const all = summarize(times[name]);
      return {
        p50_ms: all.p50,
        p99_ms: all.p99,
        max_ms: all.max,
        popular_p99_ms: summarize(popular[name]).p99,
        avg_examples_returned: returned[name] / queries,
      };
    };
    return {
      db: kind,
      rows,
      examples,
      load_s: loadS,
      index_s: indexS,
      queries,
      current: stats("current"),
      previous: stats("previous"),
      indexes_used: [...used].sort(),
      explain: `-- ${explainPrompt}\n${plan.join("\n")}`,
      explain_previous: planPrevious.join("\n"),
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
        `EXPLAIN ANALYZE at ${biggest.rows.toLocaleString("en")} rows (Postgres), the current query, a prompt about the most popular ticker:\n\n\`\`\`text\n${biggest.explain}\n\`\`\``,
        `The previous query on the same prompt and data:\n\n\`\`\`text\n${biggest.explain_previous}\n\`\`\``,
      );
    }
    return {
      id: "augmentation",
      title: this.title,
      command: `npm run bench -- --only augmentation${opts.quick ? " --quick" : ""}`,
      target: "< 5 ms p99 at 1 M rows (Postgres), over a mix with the most popular tickers",
      tables: [
        {
          title: `selectExamples() per query, current vs previous query alternating on the same data, ${queries} prompts (every third about one of the 10 most popular tickers) after 20 warm-ups; client-side time (Drizzle, driver, round trip, ranking)`,
          columns: [
            "database",
            "feedback rows",
            "worked examples",
            "COPY load s",
            "index build s",
            "query",
            "p50 ms",
            "p99 ms",
            "p99 ms, popular tickers",
            "max ms",
            "examples returned",
          ],
          rows: results.flatMap((r) =>
            (["current", "previous"] as const).map((name) => [
              r.db,
              r.rows.toLocaleString("en"),
              r.examples.toLocaleString("en"),
              round(r.load_s),
              round(r.index_s),
              name === "current" ? "**current**" : "previous (41d698c)",
              round(r[name].p50_ms),
              round(r[name].p99_ms),
              round(r[name].popular_p99_ms),
              round(r[name].max_ms),
              round(r[name].avg_examples_returned),
            ]),
          ),
        },
      ],
      notes: [
        `Indexes the current query used (EXPLAIN): ${[...new Set(results.flatMap((r) => r.indexes_used))].sort().join(", ")}.`,
        ...notes,
      ],
      data: { now: NOW.toISOString(), queries, results },
    };
  },
};
