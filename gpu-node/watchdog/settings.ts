/**
 * The watchdog's settings: the only place that reads its environment. Defaults are the seed's
 * (every 60 s, above 10.5 GB = 10500 MiB for 3 consecutive checks, container `llm-sidecar`).
 */
import { z } from "zod";
import { LogLevel, parseEnv } from "../contract/env.ts";

/** Where the Docker engine listens: a unix socket, or plain tcp (no TLS). */
export type DockerEndpoint =
  | { kind: "socket"; socketPath: string }
  | { kind: "tcp"; host: string; port: number };

export function parseDockerHost(value: string): DockerEndpoint {
  if (value.startsWith("unix://")) return { kind: "socket", socketPath: value.slice(7) };
  if (value.startsWith("/")) return { kind: "socket", socketPath: value };
  if (value.startsWith("tcp://") || value.startsWith("http://")) {
    const url = new URL(value.replace(/^tcp:/, "http:"));
    return { kind: "tcp", host: url.hostname, port: Number(url.port || 2375) };
  }
  throw new Error(
    "DOCKER_HOST must be unix:///path/to/docker.sock, /path/to/docker.sock or tcp://host:port",
  );
}

const positiveSeconds = z.coerce.number().positive().finite();

export const WatchdogEnv = z.object({
  /** Name (or id) of the GPU container to watch. */
  WATCHDOG_CONTAINER: z.string().min(1).default("llm-sidecar"),
  /** Seconds between checks. Fractions allowed (tests use 0.2). */
  WATCHDOG_INTERVAL_S: positiveSeconds.default(60),
  /** A GPU is high when memory used is strictly above this, MiB (nvidia-smi's unit). */
  WATCHDOG_THRESHOLD_MIB: z.coerce.number().int().positive().default(10500),
  /** High readings in a row (per GPU) before a restart. */
  WATCHDOG_CONSECUTIVE: z.coerce.number().int().min(1).default(3),
  /** After a restart, readings are ignored this long, seconds (models reloading). */
  WATCHDOG_COOLDOWN_S: z.coerce.number().min(0).finite().default(300),
  /** Restarts allowed per rolling hour; past it the watchdog only alerts. 0 = monitor only. */
  WATCHDOG_MAX_RESTARTS_PER_HOUR: z.coerce.number().int().min(0).default(3),
  /** Time allowed for one nvidia-smi run inside the container, seconds. */
  WATCHDOG_EXEC_TIMEOUT_S: positiveSeconds.default(20),
  /** Grace period given to the container to stop before it is killed on restart, seconds. */
  WATCHDOG_STOP_TIMEOUT_S: z.coerce.number().int().min(0).default(30),
  /** The Docker engine. */
  DOCKER_HOST: z
    .string()
    .default("unix:///var/run/docker.sock")
    .transform((value, ctx) => {
      try {
        return parseDockerHost(value);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    }),
  /** Where GET /metrics (Prometheus) listens; port 0 = no metrics listener. */
  WATCHDOG_METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  WATCHDOG_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9102),
  LOG_LEVEL: LogLevel.default("info"),
});

export interface WatchdogSettings {
  container: string;
  intervalS: number;
  thresholdMiB: number;
  consecutive: number;
  cooldownS: number;
  maxRestartsPerHour: number;
  execTimeoutS: number;
  stopTimeoutS: number;
  docker: DockerEndpoint;
  metrics: { host: string; port: number };
  logLevel: LogLevel;
}

/**
 * Parses the environment; throws one SettingsError listing every bad variable. Empty strings
 * count as unset.
 */
export function loadWatchdogSettings(env: Record<string, string | undefined>): WatchdogSettings {
  const e = parseEnv(WatchdogEnv, env);
  return {
    container: e.WATCHDOG_CONTAINER,
    intervalS: e.WATCHDOG_INTERVAL_S,
    thresholdMiB: e.WATCHDOG_THRESHOLD_MIB,
    consecutive: e.WATCHDOG_CONSECUTIVE,
    cooldownS: e.WATCHDOG_COOLDOWN_S,
    maxRestartsPerHour: e.WATCHDOG_MAX_RESTARTS_PER_HOUR,
    execTimeoutS: e.WATCHDOG_EXEC_TIMEOUT_S,
    stopTimeoutS: e.WATCHDOG_STOP_TIMEOUT_S,
    docker: e.DOCKER_HOST,
    metrics: { host: e.WATCHDOG_METRICS_HOST, port: e.WATCHDOG_METRICS_PORT },
    logLevel: e.LOG_LEVEL,
  };
}
