/**
 * `npm run export:jsonl -- --kind log|feedback|generations --out FILE [--since ISO-8601]`
 * Writes the record as JSONL (the seed's phi3_feedback_log.jsonl / phi3_feedback_data.jsonl),
 * streaming, with progress on stderr. Reads DATABASE_URL / DATA_DIR like the edge.
 */

import { parseArgs } from "node:util";
import { openDatabase } from "../db/client.ts";
import { migrateDatabase } from "../db/migrate.ts";
import { DataDirectoryInUseError } from "../db/pglite-lock.ts";
import { loadEnvFile } from "../gpu-node/contract/env-file.ts";
import { writeNdjsonFile } from "./node-runtime/ndjson-file.ts";
import { TIMESTAMP_MAX, TIMESTAMP_MIN } from "./routes/schemas.ts";
import { countExport, type ExportKind, exportLines } from "./services/export.ts";
import { parseEdgeSettings, SettingsError } from "./settings.ts";

const USAGE =
  "usage: npm run export:jsonl -- --kind log|feedback|generations --out FILE [--since 2026-01-01T00:00:00Z]";

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
  if (values.kind !== "log" && values.kind !== "feedback" && values.kind !== "generations")
    throw new UsageError("--kind must be log, feedback or generations");
  if (!values.out) throw new UsageError("--out FILE is required");
  const since = values.since ? new Date(values.since) : undefined;
  if (since && Number.isNaN(since.getTime()))
    throw new UsageError("--since must be an ISO-8601 date-time");
  if (since && (since.getTime() < TIMESTAMP_MIN || since.getTime() > TIMESTAMP_MAX))
    throw new UsageError(
      "--since must be between 0100-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z",
    );
  const kind: ExportKind = values.kind;

  loadEnvFile();
  const settings = parseEdgeSettings(process.env);
  let handle: Awaited<ReturnType<typeof openDatabase>>;
  try {
    handle = await openDatabase({
      databaseUrl: settings.DATABASE_URL,
      dataDir: settings.DATA_DIR,
      command: "export:jsonl",
    });
  } catch (err) {
    if (!(err instanceof DataDirectoryInUseError)) throw err;
    // Never open PGlite's directory twice: export through the running edge instead.
    const base = err.holder.url ?? `http://${settings.HOST}:${settings.PORT}`;
    const auth = settings.API_KEYS.length > 0 ? " -H 'authorization: Bearer <key>'" : "";
    throw new UsageError(
      `${err.message}. PGlite is single-process, so this command will not open it a second ` +
        `time. Export through that edge instead:\n` +
        `  curl -sf${auth} '${base}/feedback/phi3/export?kind=${kind}${since ? `&since=${encodeURIComponent(since.toISOString())}` : ""}' > ${values.out}\n` +
        "or stop the edge and run this command again.",
      false,
    );
  }
  try {
    await migrateDatabase(handle);
    const total = await countExport(handle.db, { kind, since });
    await writeNdjsonFile({
      lines: exportLines(handle.db, { kind, since }),
      total,
      out: values.out,
      label: `export ${kind}`,
    });
  } finally {
    await handle.close();
  }
}

class UsageError extends Error {
  constructor(
    message: string,
    readonly showUsage = true,
  ) {
    super(message);
  }
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n${err.showUsage ? `${USAGE}\n` : ""}`);
  } else if (err instanceof SettingsError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`export failed: ${(err as Error).message}\n`);
  process.exit(1);
});
