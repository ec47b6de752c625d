/**
 * `npm run export:dataset -- --format sft|dpo --out FILE [--since ISO-8601]`
 * Writes the fine-tuning dataset built from the corrections (edge/services/export-dataset.ts) as
 * JSONL, streaming, with progress on stderr. Reads DATABASE_URL / DATA_DIR like the edge.
 */

import { parseArgs } from "node:util";
import { openDatabase } from "../db/client.ts";
import { migrateDatabase } from "../db/migrate.ts";
import { writeNdjsonFile } from "./node-runtime/ndjson-file.ts";
import { countDataset, type DatasetFormat, exportDataset } from "./services/export-dataset.ts";
import { parseEdgeSettings, SettingsError } from "./settings.ts";

const USAGE =
  "usage: npm run export:dataset -- --format sft|dpo --out FILE [--since 2026-01-01T00:00:00Z]";

class UsageError extends Error {}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      format: { type: "string" },
      out: { type: "string" },
      since: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.format !== "sft" && values.format !== "dpo") {
    throw new UsageError("--format must be sft or dpo");
  }
  if (!values.out) throw new UsageError("--out FILE is required");
  const since = values.since ? new Date(values.since) : undefined;
  if (since && Number.isNaN(since.getTime())) {
    throw new UsageError("--since must be an ISO-8601 date-time");
  }
  const format: DatasetFormat = values.format;
  try {
    process.loadEnvFile?.();
  } catch {
    // no .env
  }
  const settings = parseEdgeSettings(process.env);
  const handle = await openDatabase({
    databaseUrl: settings.DATABASE_URL,
    dataDir: settings.DATA_DIR,
  });
  try {
    await migrateDatabase(handle);
    await writeNdjsonFile({
      lines: exportDataset({ ctx: { db: handle.db }, input: { format, since } }),
      total: await countDataset(handle.db, { format, since }),
      out: values.out,
      label: `dataset ${format}`,
    });
  } finally {
    await handle.close();
  }
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) process.stderr.write(`${err.message}\n${USAGE}\n`);
  else if (err instanceof SettingsError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`export failed: ${(err as Error).message}\n`);
  process.exit(1);
});
