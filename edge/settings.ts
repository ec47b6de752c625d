/**
 * The edge's settings: one zod schema, parsed once at the entry (Node or Workers) from the
 * environment it was given. Nothing else in edge/ reads the environment.
 */
import { z } from "zod";
import { DatabaseEnv } from "../db/settings.ts";
import { isLoopbackHost, LogLevel, parseEnv, SettingsError } from "../gpu-node/contract/env.ts";

export { isLoopbackHost, SettingsError };

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no", ""])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Empty strings mean "unset", as in a .env file with `KEY=`. */
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

export const EdgeSettingsSchema = z.object({
  PORT: int(0, 65535).default(8000),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATA_DIR: DatabaseEnv.shape.DATA_DIR,
  DATABASE_URL: DatabaseEnv.shape.DATABASE_URL,
  /** Unset: derived from GPU_NODE_PORT (and GPU_NODE_HOST), see `defaultGpuNodeUrl`. */
  GPU_NODE_URL: z.url({ protocol: /^https?$/ }).optional(),
  // Read only to derive the default GPU_NODE_URL; the GPU node itself owns them.
  GPU_NODE_HOST: z.string().min(1).optional(),
  GPU_NODE_PORT: int(0, 65535).optional(),
  /** Several GPU nodes, comma-separated; when set it replaces GPU_NODE_URL. */
  GPU_NODE_URLS: optionalString.pipe(
    z
      .string()
      .optional()
      .transform((v) =>
        v
          ? [
              ...new Set(
                v
                  .split(",")
                  .map((u) => u.trim())
                  .filter(Boolean),
              ),
            ]
          : [],
      )
      .pipe(z.array(z.url({ protocol: /^https?$/ }))),
  ),
  GPU_NODE_TOKEN: optionalString,
  API_KEYS: optionalString.transform((v) =>
    v
      ? v
          .split(",")
          .map((k) => k.trim())
          .filter((k) => k.length > 0)
      : [],
  ),
  /** Signs the review page's session cookies. Unset: derived from API_KEYS (random per process
   * when there are none). */
  SESSION_SECRET: optionalString,
  SESSION_TTL_S: int(60, 30 * 86_400).default(43_200),
  /** A bearer token for GET /metrics (Prometheus), accepted besides the API keys. */
  METRICS_TOKEN: optionalString,
  TLS_CERT_FILE: optionalString,
  TLS_KEY_FILE: optionalString,
  REQUEST_TIMEOUT_MS: int(1000, 3_600_000).default(120_000),
  GPU_TIMEOUT_MS: int(100, 3_600_000).default(90_000),
  HEALTH_TIMEOUT_MS: int(100, 60_000).default(3000),
  BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(65_536),
  JSON_MAX_DEPTH: int(2, 1000).default(64),
  DB_CONNECT_TIMEOUT_MS: int(100, 60_000).default(1000),
  DB_POOL_WAIT_MS: int(10, 60_000).default(500),
  DB_STATEMENT_TIMEOUT_MS: int(100, 3_600_000).default(1000),
  AUGMENT_MAX_EXAMPLES: int(0, 20).default(3),
  AUGMENT_MAX_CHARS: int(0, 100_000).default(2000),
  AUGMENT_MAX_AGE_DAYS: int(0, 36_500).default(90),
  AUGMENT_SIMILARITY_POOL: int(1, 100_000).default(100),
  JSONL_MIRROR: bool.default(true),
  LOG_LEVEL: LogLevel.default("info"),
});

export type EdgeSettings = Omit<
  z.output<typeof EdgeSettingsSchema>,
  "GPU_NODE_URL" | "GPU_NODE_HOST" | "GPU_NODE_PORT"
> & { GPU_NODE_URL: string };

/**
 * The GPU node's URL when GPU_NODE_URL is unset: the node as the same .env starts it, i.e.
 * GPU_NODE_PORT (8001) on GPU_NODE_HOST, or on 127.0.0.1 when the node binds every interface.
 * So changing ports takes one variable per port.
 */
export function defaultGpuNodeUrl(host = "127.0.0.1", port = 8001): string {
  if (port === 0) {
    throw new SettingsError(
      "GPU_NODE_URL",
      "invalid setting GPU_NODE_URL: GPU_NODE_PORT asks for any free port, so the GPU node's URL cannot be derived; set GPU_NODE_URL",
    );
  }
  const reachable = host === "0.0.0.0" || host === "::" || host === "[::]" ? "127.0.0.1" : host;
  const bracketed =
    reachable.includes(":") && !reachable.startsWith("[") ? `[${reachable}]` : reachable;
  return `http://${bracketed}:${port}`;
}

/**
 * Parses and checks the settings. Throws a SettingsError whose message is one line naming the
 * offending variable.
 */
export function parseEdgeSettings(env: Record<string, string | undefined>): EdgeSettings {
  // Unset and empty are the same for every variable with a default.
  const { GPU_NODE_HOST, GPU_NODE_PORT, ...rest } = parseEnv(EdgeSettingsSchema, env);
  const settings: EdgeSettings = {
    ...rest,
    GPU_NODE_URL: rest.GPU_NODE_URL ?? defaultGpuNodeUrl(GPU_NODE_HOST, GPU_NODE_PORT),
  };
  if ((settings.TLS_CERT_FILE === undefined) !== (settings.TLS_KEY_FILE === undefined)) {
    throw new SettingsError(
      "TLS_CERT_FILE",
      "invalid setting TLS_CERT_FILE/TLS_KEY_FILE: set both to serve HTTPS, or neither",
    );
  }
  return settings;
}

/** The GPU nodes the edge uses: GPU_NODE_URLS when set, else GPU_NODE_URL. */
export function gpuNodeUrls(settings: Pick<EdgeSettings, "GPU_NODE_URL" | "GPU_NODE_URLS">) {
  return settings.GPU_NODE_URLS.length > 0 ? settings.GPU_NODE_URLS : [settings.GPU_NODE_URL];
}

/**
 * A public API without keys is a hole: binding beyond loopback requires API_KEYS.
 * (Workers are always public, so the worker entry calls this with a non-loopback host.)
 */
export function assertSafeExposure(settings: EdgeSettings, host = settings.HOST): void {
  if (!isLoopbackHost(host) && settings.API_KEYS.length === 0) {
    throw new SettingsError(
      "API_KEYS",
      "refusing to serve on a non-loopback HOST without API_KEYS: set API_KEYS (comma-separated) or bind HOST to 127.0.0.1",
    );
  }
}

/** The Postgres client limits the settings describe (db/client-postgres.ts). */
export function databaseTimeouts(settings: EdgeSettings) {
  return {
    connectMs: settings.DB_CONNECT_TIMEOUT_MS,
    poolWaitMs: settings.DB_POOL_WAIT_MS,
    statementMs: settings.DB_STATEMENT_TIMEOUT_MS,
  };
}
