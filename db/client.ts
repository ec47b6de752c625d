/**
 * The Node side's database factory: the one place that turns the settings (DATABASE_URL,
 * DATA_DIR) into a handle. Node only (PGlite, the file system); the Worker builds its per-request
 * postgres-js client from db/client-postgres.ts directly.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { createPgliteDatabase } from "./client-pglite.ts";
import { createPostgresDatabase, type PostgresTimeouts } from "./client-postgres.ts";
import type { DatabaseHandle } from "./database.ts";
import { lockDataDirectory } from "./pglite-lock.ts";

/** Opens the database the settings name: postgres-js for a URL, else PGlite in dataDir/pg. */
export async function openDatabase(opts: {
  databaseUrl?: string;
  dataDir: string;
  /** Postgres only: client-side limits (the edge sets them from its settings). */
  timeouts?: PostgresTimeouts;
  /** PGlite only: who opens the directory, named to a second process that tries (lock). */
  command?: string;
}): Promise<DatabaseHandle> {
  if (opts.databaseUrl) {
    return createPostgresDatabase({ url: opts.databaseUrl, timeouts: opts.timeouts });
  }
  const dir = path.resolve(opts.dataDir, "pg");
  mkdirSync(dir, { recursive: true });
  // PGlite is single-process: refuse (DataDirectoryInUseError) rather than open it twice.
  const lock = lockDataDirectory(dir, opts.command ?? "db:migrate");
  try {
    const handle = await createPgliteDatabase(dir);
    return {
      ...handle,
      lock,
      close: async () => {
        try {
          await handle.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (err) {
    lock.release();
    throw err;
  }
}
