/**
 * The Node side's database factory: the one place that turns the settings (DATABASE_URL,
 * DATA_DIR) into a handle. Node only (PGlite, the file system); the Worker builds its per-request
 * postgres-js client from db/client-postgres.ts directly.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { createPgliteDatabase } from "./client-pglite.ts";
import { createPostgresDatabase } from "./client-postgres.ts";
import type { DatabaseHandle } from "./database.ts";

/** Opens the database the settings name: postgres-js for a URL, else PGlite in dataDir/pg. */
export async function openDatabase(opts: {
  databaseUrl?: string;
  dataDir: string;
}): Promise<DatabaseHandle> {
  if (opts.databaseUrl) return createPostgresDatabase({ url: opts.databaseUrl });
  const dir = path.resolve(opts.dataDir, "pg");
  mkdirSync(dir, { recursive: true });
  return createPgliteDatabase(dir);
}
