/**
 * Applies the committed SQL migrations (db/migrations). Node only: the migrator reads the folder.
 * `npm run db:migrate` runs it against DATABASE_URL (or the embedded PGlite in DATA_DIR/pg).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PgliteDatabase } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import { parseEnv } from "../gpu-node/contract/env.ts";
import { loadEnvFile } from "../gpu-node/contract/env-file.ts";
import { openDatabase } from "./client.ts";
import type { DatabaseHandle } from "./database.ts";
import { DataDirectoryInUseError } from "./pglite-lock.ts";
import type * as schema from "./schema/index.ts";
import { DatabaseEnv } from "./settings.ts";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("./migrations", import.meta.url));

/** Applies pending migrations; the bookkeeping table lives in `migrationsSchema`. */
export async function migrateDatabase(
  handle: DatabaseHandle,
  migrationsSchema = "drizzle",
): Promise<void> {
  const config = { migrationsFolder: MIGRATIONS_FOLDER, migrationsSchema };
  if (handle.kind === "pglite") {
    await migratePglite(handle.db as unknown as PgliteDatabase<typeof schema>, config);
  } else {
    await migratePostgres(handle.db as unknown as PostgresJsDatabase<typeof schema>, config);
  }
}

async function main(): Promise<void> {
  loadEnvFile();
  const { DATABASE_URL: databaseUrl, DATA_DIR: dataDir } = parseEnv(DatabaseEnv, process.env);
  const handle = await openDatabase({ databaseUrl, dataDir });
  const where = databaseUrl ? "DATABASE_URL" : `PGlite in ${path.resolve(dataDir, "pg")}`;
  process.stderr.write(`applying migrations to ${where} ...\n`);
  await migrateDatabase(handle);
  await handle.close();
  process.stderr.write("migrations applied\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((err: unknown) => {
    if (err instanceof DataDirectoryInUseError) {
      process.stderr.write(
        `db:migrate: ${err.message}; it applies the migrations itself when it starts.\n`,
      );
      process.exit(1);
    }
    process.stderr.write(
      `db:migrate failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  });
}
