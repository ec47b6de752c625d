/**
 * What every settings schema shares (the edge's, the GPU node's, the watchdog's and the CLIs'):
 * the log levels, the loopback check, SettingsError and the one way an environment is parsed.
 * zod only (Workers-safe): the Worker parses its env with the same helpers as the Node entries.
 * Loading `.env` is Node only: ./env-file.ts.
 */
import { z } from "zod";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export const LogLevel = z.enum(LOG_LEVELS);
export type LogLevel = z.infer<typeof LogLevel>;

/** A setting that cannot be used; `message` is the one line printed before exiting. */
export class SettingsError extends Error {
  override name = "SettingsError";
  constructor(
    /** The first offending variable. */
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

/** Hosts that only this machine can reach (an IPv6 address may come in brackets). */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * The variables a schema names, trimmed; empty ones are left out, so `KEY=` in a copied
 * .env.template means "unset" (the default) for every variable.
 */
export function presentVariables(
  env: Record<string, string | undefined>,
  names: readonly string[],
): Record<string, string> {
  const present: Record<string, string> = {};
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) present[name] = value;
  }
  return present;
}

/**
 * Parses the environment with `schema` (one entry per variable). Throws a SettingsError whose
 * message is one line naming each bad variable. The line is logged and a value may be a secret
 * (a DATABASE_URL's password, a token), so values appear only with `showValues`, for a schema
 * whose checked values are all harmless (numbers, choices, paths).
 */
export function parseEnv<S extends z.ZodObject>(
  schema: S,
  env: Record<string, string | undefined>,
  options: { showValues?: boolean } = {},
): z.output<S> {
  const present = presentVariables(env, Object.keys(schema.shape));
  const parsed = schema.safeParse(present);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "settings");
    const got = options.showValues ? present[name] : undefined;
    return `invalid setting ${name}${got === undefined ? "" : `=${JSON.stringify(got)}`}: ${issue.message}`;
  });
  throw new SettingsError(
    String(parsed.error.issues[0]?.path[0] ?? "settings"),
    problems.join("; "),
  );
}
