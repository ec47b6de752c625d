import type { Logger } from "pino";

export interface BenchOptions {
  quick: boolean;
  logger: Logger;
  /** Postgres for the database benchmarks (a dedicated schema is created and dropped). */
  databaseUrl: string | undefined;
  /** Scratch folder for generated models and data; removed after the run. */
  scratch: string;
}

export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number | null>>;
}

/** What each benchmark returns: tables for BENCHMARKS.md and the raw numbers behind them. */
export interface BenchResult {
  id: string;
  title: string;
  /** The command that reproduces this figure. */
  command: string;
  target: string;
  tables: Table[];
  notes: string[];
  data: Record<string, unknown>;
}

export interface Benchmark {
  id: string;
  title: string;
  run(options: BenchOptions): Promise<BenchResult>;
}
