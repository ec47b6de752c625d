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
  GPU_NODE_URL: z.url({ protocol: /^https?$/ }).default("http://127.0.0.1:8001"),
  GPU_NODE_TOKEN: optionalString,
  API_KEYS: optionalString.transform((v) =>
    v
      ? v
          .split(",")
          .map((k) => k.trim())
          .filter((k) => k.length > 0)
      : [],
  ),
  TLS_CERT_FILE: optionalString,
  TLS_KEY_FILE: optionalString,
  REQUEST_TIMEOUT_MS: int(1000, 3_600_000).default(120_000),
  GPU_TIMEOUT_MS: int(100, 3_600_000).default(90_000),
  HEALTH_TIMEOUT_MS: int(100, 60_000).default(3000),
  BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(65_536),
  AUGMENT_MAX_EXAMPLES: int(0, 20).default(3),
  AUGMENT_MAX_CHARS: int(0, 100_000).default(2000),
  AUGMENT_MAX_AGE_DAYS: int(0, 36_500).default(90),
  AUGMENT_SIMILARITY_POOL: int(1, 100_000).default(500),
  JSONL_MIRROR: bool.default(true),
  LOG_LEVEL: LogLevel.default("info"),
});

export type EdgeSettings = z.output<typeof EdgeSettingsSchema>;

/**
 * Parses and checks the settings. Throws a SettingsError whose message is one line naming the
 * offending variable.
 */
export function parseEdgeSettings(env: Record<string, string | undefined>): EdgeSettings {
  // Unset and empty are the same for every variable with a default.
  const settings = parseEnv(EdgeSettingsSchema, env);
  if ((settings.TLS_CERT_FILE === undefined) !== (settings.TLS_KEY_FILE === undefined)) {
    throw new SettingsError(
      "TLS_CERT_FILE",
      "invalid setting TLS_CERT_FILE/TLS_KEY_FILE: set both to serve HTTPS, or neither",
    );
  }
  return settings;
}

/**
 * A public API without keys is a hole: binding beyond loopback requires API_KEYS.
 * (Workers are always public, so the worker entry calls this with a non-loopback host.)
 */
export function assertSafeExposure(settings: EdgeSettings, host = settings.HOST): void {
  if (!isLoopbackHost(host) && settings.API_KEYS.length === 0) {
    throw new SettingsError(
      "API_KEYS",
      `refusing to serve on HOST=${host} without API_KEYS: set API_KEYS (comma-separated) or bind to 127.0.0.1`,
    );
  }
}
