import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import type { DatabaseHandle } from "./database.ts";
import * as schema from "./schema/index.ts";

/** How long the client waits for Postgres before a query fails (it then answers 503 quickly). */
export interface PostgresTimeouts {
  /** Opening a connection, ms (postgres-js connect_timeout). */
  connectMs: number;
  /** Waiting for a pooled connection (connecting included) before the query is sent, ms. */
  poolWaitMs: number;
  /** The server's statement_timeout, ms; the client also gives up this long (plus a little)
   * after sending a query, for a server that stopped answering without closing the socket. */
  statementMs: number;
}

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
  /** Unset: postgres-js's own behaviour (no client-side limits; for migrations, benches). */
  timeouts?: PostgresTimeouts;
}

/** Error of a query the client gave up on (no connection in time, or no answer in time). */
export class DatabaseTimeoutError extends Error {
  override name = "DatabaseTimeoutError";
  readonly code = "DB_TIMEOUT";
}

/** The part of a postgres-js pending query the deadline uses. */
interface PendingQuery {
  state: unknown;
  cancel(): unknown;
  reject(err: unknown): void;
  then(onOk: () => void, onErr: () => void): unknown;
}

/** Grace after statement_timeout before the client stops waiting for the server's own error. */
const STATEMENT_GRACE_MS = 250;

/**
 * Gives every query a deadline: not handed to a connection within poolWaitMs, it is taken out of
 * postgres-js's queue (cancel() never sends it) and fails; sent but unanswered within
 * statementMs + grace, it fails (and a cancel request is sent, best effort).
 */
function armDeadline(query: PendingQuery, t: PostgresTimeouts): void {
  let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
    if (query.state === null) {
      query.reject(new DatabaseTimeoutError(`no database connection within ${t.poolWaitMs} ms`));
      void Promise.resolve(query.cancel()).catch(() => {});
      return;
    }
    timer = setTimeout(() => {
      query.reject(
        new DatabaseTimeoutError(`no answer from the database within ${t.statementMs} ms`),
      );
      void Promise.resolve(query.cancel()).catch(() => {});
    }, t.statementMs + STATEMENT_GRACE_MS);
  }, t.poolWaitMs);
  const clear = () => clearTimeout(timer);
  query.then(clear, clear);
}

/** Reconnect delay after a failed connection: short and capped (postgres-js's grows to 20 s). */
const backoff = (retries: number) => Math.min(0.05 * 2 ** retries, 0.5);

/** Postgres through postgres-js. Works on Node and on Workers (nodejs_compat). */
export function createPostgresDatabase(options: PostgresOptions): DatabaseHandle {
  const t = options.timeouts;
  const connection: Record<string, string> = {};
  if (options.schema) connection.search_path = `${options.schema},public`;
  if (t) connection.statement_timeout = String(t.statementMs);
  const client = postgres(options.url, {
    max: options.max ?? 10,
    onnotice: () => {},
    fetch_types: options.fetchTypes ?? true,
    idle_timeout: options.idleTimeoutS,
    connection,
    ...(t ? { connect_timeout: t.connectMs / 1000, backoff } : {}),
  });
  if (t) {
    // Drizzle sends every query through client.unsafe(); give each one its deadline.
    const unsafe = client.unsafe.bind(client);
    client.unsafe = ((...args: Parameters<typeof unsafe>) => {
      const query = unsafe(...args);
      armDeadline(query as unknown as PendingQuery, t);
      return query;
    }) as typeof client.unsafe;
  }
  const db = drizzle(client, { schema });
  return {
    db,
    kind: "postgres",
    close: () => client.end({ timeout: 5 }),
  };
}
