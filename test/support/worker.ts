/**
 * The edge as a Cloudflare Worker in workerd, started by wrangler (unstable_startWorker) from the
 * real wrangler.toml, for tests that speak HTTP to it.
 *
 * Isolation: Hyperdrive's local binding hands the Worker only host, port, user, password and
 * database (query options such as search_path are dropped), so each test database gets its own
 * Postgres role whose default search_path is the test's schema. The Worker is unchanged: it
 * connects through HYPERDRIVE as deployed, and lands in that schema.
 */
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { EdgeSettingsSchema } from "../../edge/settings.ts";
import { TEST_DATABASE_URL, type TestDatabase } from "./db.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface RunningWorker {
  url: string;
  close(): Promise<void>;
}

/**
 * A login role for this test database: its search_path is the test schema, its privileges the
 * rows of that schema. Returns a Hyperdrive localConnectionString (it must carry a password).
 */
export async function createWorkerRole(
  db: TestDatabase,
): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = TEST_DATABASE_URL;
  if (!adminUrl || !db.schema) {
    throw new Error("the Worker runs against Postgres: set TEST_DATABASE_URL");
  }
  const role = db.schema;
  const password = "pw";
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create role ${role} login password '${password}'`);
    await admin.unsafe(`alter role ${role} set search_path = ${role}, public`);
    await admin.unsafe(`grant usage on schema ${role} to ${role}`);
    await admin.unsafe(
      `grant select, insert, update, delete on all tables in schema ${role} to ${role}`,
    );
    await admin.unsafe(`grant usage, select on all sequences in schema ${role} to ${role}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.username = role;
  url.password = password;
  url.search = "";
  return {
    url: url.toString(),
    drop: async () => {
      const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop owned by ${role}`);
        await sql.unsafe(`drop role if exists ${role}`);
      } finally {
        await sql.end();
      }
    },
  };
}

/**
 * Starts wrangler.toml's Worker on a random loopback port with these vars and secrets (all as
 * plain text) and HYPERDRIVE pointing at `connectionString`. Every edge setting is given, unset
 * ones as "" (= the default), so neither wrangler.toml's [vars] nor a developer's .dev.vars
 * changes what a test sees.
 */
export async function startWorker(options: {
  connectionString: string;
  vars: Record<string, string>;
}): Promise<RunningWorker> {
  // Offline machines: miniflare would try to download Request.cf for every Worker it starts.
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  // Wrangler tells it runs under tests by a global `vitest` (Vitest defines none without
  // `globals`). Without it, it writes a debug log file under ~/.config/.wrangler/logs for every
  // process and, once a Worker has logged an error (the misconfiguration tests do, on purpose),
  // prints "Logs were written to …" when the test process exits.
  (globalThis as { vitest?: unknown }).vitest ??= true;
  // Loaded on demand: wrangler is large and only the Worker suites need it.
  const { unstable_startWorker } = await import("wrangler");
  const bindings: Record<string, { type: "plain_text"; value: string }> = {};
  const vars: Record<string, string> = {};
  for (const key of Object.keys(EdgeSettingsSchema.shape)) vars[key] = "";
  Object.assign(vars, options.vars);
  for (const [name, value] of Object.entries(vars)) {
    bindings[name] = { type: "plain_text", value };
  }
  const worker = await unstable_startWorker({
    config: `${ROOT}/wrangler.toml`,
    // No .env files. A developer's .dev.vars is still read by wrangler, but these bindings win.
    envFiles: [],
    bindings: {
      ...bindings,
      HYPERDRIVE: {
        type: "hyperdrive",
        id: "local",
        localConnectionString: options.connectionString,
      },
    },
    dev: {
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: false,
      watch: false,
      persist: false,
      logLevel: "error",
    },
    sendMetrics: false,
  });
  try {
    await worker.ready;
    const url = await worker.url;
    // The first request pays for the isolate's start-up (seconds on a busy machine): pay it here,
    // not in a test's time. Any answer will do; nothing behind it is touched.
    await (await fetch(new URL("/__warm-up", url))).arrayBuffer();
    return {
      url: url.origin,
      close: () => worker.dispose(),
    };
  } catch (err) {
    await worker.dispose().catch(() => {});
    throw err;
  }
}
