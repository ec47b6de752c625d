import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "./schema/index.ts";

/** The one database type the services use, whichever driver is underneath. */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

/** A database handle with its lifecycle. Made by a factory, never a module singleton. */
export interface DatabaseHandle {
  db: Database;
  kind: "pglite" | "postgres";
  /** An embedded database directory's lock (db/pglite-lock.ts), when one was taken. */
  lock?: { update(extra: { url?: string }): void };
  close(): Promise<void>;
}
