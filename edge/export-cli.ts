/**
 * `npm run export:jsonl -- --kind log|feedback --out FILE [--since ISO-8601]`
 * Writes the record as JSONL (the seed's phi3_feedback_log.jsonl / phi3_feedback_data.jsonl),
 * streaming, with progress on stderr. Reads DATABASE_URL / DATA_DIR like the edge.
 */

import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { parseArgs } from "node:util";
import { openDatabase } from "../db/client.ts";
import { migrateDatabase } from "../db/migrate.ts";
import { loadEnvFile } from "../gpu-node/contract/env-file.ts";
import { countExport, type ExportKind, exportLines } from "./services/export.ts";
import { parseEdgeSettings, SettingsError } from "./settings.ts";

const USAGE =
  "usage: npm run export:jsonl -- --kind log|feedback --out FILE [--since 2026-01-01T00:00:00Z]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kind: { type: "string" },
      out: { type: "string" },
      since: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.kind !== "log" && values.kind !== "feedback")
    throw new UsageError("--kind must be log or feedback");
  if (!values.out) throw new UsageError("--out FILE is required");
  const since = values.since ? new Date(values.since) : undefined;
  if (since && Number.isNaN(since.getTime()))
    throw new UsageError("--since must be an ISO-8601 date-time");
  const kind: ExportKind = values.kind;

  loadEnvFile();
  const settings = parseEdgeSettings(process.env);
  const handle = await openDatabase({
    databaseUrl: settings.DATABASE_URL,
    dataDir: settings.DATA_DIR,
  });
  try {
    await migrateDatabase(handle);
    const total = await countExport(handle.db, { kind, since });
    const out = createWriteStream(values.out);
    let written = 0;
    let lastReport = 0;
    const report = (final = false) => {
      const pct = total > 0 ? Math.floor((written / total) * 100) : 100;
      process.stderr.write(`\rexport ${kind}: ${written}/${total} (${pct}%)${final ? "\n" : ""}`);
    };
    report();
    for await (const line of exportLines(handle.db, { kind, since })) {
      if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, "drain");
      written++;
      if (Date.now() - lastReport > 250) {
        lastReport = Date.now();
        report();
      }
    }
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    report(true);
    process.stderr.write(`wrote ${written} line(s) to ${values.out}\n`);
  } finally {
    await handle.close();
  }
}

class UsageError extends Error {}

main().catch((err: unknown) => {
  if (err instanceof UsageError) process.stderr.write(`${err.message}\n${USAGE}\n`);
  else if (err instanceof SettingsError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`export failed: ${(err as Error).message}\n`);
  process.exit(1);
});
