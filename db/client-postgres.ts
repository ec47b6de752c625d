import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import type { DatabaseHandle } from "./database.ts";
import * as schema from "./schema/index.ts";

export interface PostgresOptions {
  url: string;
  /** Pool size. On Workers use 1 per request (Hyperdrive pools for us). */
  max?: number;
  /** Schema to put first on search_path (tests isolate themselves this way). */
  schema?: string;
  /** Workers: no prepared statements across Hyperdrive's pooled connections is not needed, but
   * fetch_types costs a round trip per connection; turn it off there. */
  fetchTypes?: boolean;
  /** Close a connection idle this long (seconds); reopened on the next query. Default: never. */
  idleTimeoutS?: number;
}

/** Postgres through postgres-js. Works on Node and on Workers (nodejs_compat). */
export function createPostgresDatabase(options: PostgresOptions): DatabaseHandle {
  const client = postgres(options.url, {
    max: options.max ?? 10,
    onnotice: () => {},
    fetch_types: options.fetchTypes ?? true,
    idle_timeout: options.idleTimeoutS,
    connection: options.schema ? { search_path: `${options.schema},public` } : undefined,
  });
  const db = drizzle(client, { schema });
  return {
    db,
    kind: "postgres",
    close: () => client.end({ timeout: 5 }),
  };
}
