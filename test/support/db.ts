/**
 * Isolated databases for tests: an in-memory PGlite, or a fresh schema in the real Postgres at
 * TEST_DATABASE_URL (dropped afterwards). Every test file gets its own; nothing is shared.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { createPgliteDatabase } from "../../db/client-pglite.ts";
import { createPostgresDatabase } from "../../db/client-postgres.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import { migrateDatabase } from "../../db/migrate.ts";

export type DbKind = "pglite" | "postgres";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;

if (process.env.CI && !TEST_DATABASE_URL) {
  throw new Error("CI must set TEST_DATABASE_URL: the suite runs on PGlite and on real Postgres");
}

/** The databases every DB-backed suite runs on. */
export const DB_KINDS: DbKind[] = TEST_DATABASE_URL ? ["pglite", "postgres"] : ["pglite"];

export interface TestDatabase extends DatabaseHandle {
  /** Postgres only: the schema that holds this test's tables. */
  schema?: string;
  /** A URL that reaches this database from another process (Postgres only). */
  url?: string;
  destroy(): Promise<void>;
}

export async function createTestDatabase(kind: DbKind): Promise<TestDatabase> {
  if (kind === "pglite") {
    const handle = await createPgliteDatabase();
    await migrateDatabase(handle);
    return { ...handle, destroy: () => handle.close() };
  }
  if (!TEST_DATABASE_URL) throw new Error("TEST_DATABASE_URL is not set");
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create schema ${schema}`);
  } finally {
    await admin.end();
  }
  const handle = createPostgresDatabase({ url: TEST_DATABASE_URL, schema, max: 4 });
  await migrateDatabase(handle, schema);
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set("options", `-c search_path=${schema},public`);
  return {
    ...handle,
    schema,
    url: url.toString(),
    destroy: async () => {
      await handle.close();
      const drop = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        await drop.unsafe(`drop schema if exists ${schema} cascade`);
      } finally {
        await drop.end();
      }
    },
  };
}
