/**
 * `npm run watchdog`: watch the GPU container's VRAM and restart it when it stays too high.
 * `npm run watchdog -- --once`: one check, print the reading and the decision, restart nothing.
 * Settings: gpu-node/watchdog/settings.ts (WATCHDOG_*, DOCKER_HOST, LOG_LEVEL; .env is read).
 */
import { parseArgs } from "node:util";
import pino from "pino";
import { loadEnvFile } from "../contract/env-file.ts";
import { createDockerode, DockerodeRuntime } from "./docker.ts";
import { serveMetrics, WatchdogMetrics } from "./metrics.ts";
import { loadWatchdogSettings, type WatchdogSettings } from "./settings.ts";
import { type CheckReport, Watchdog } from "./watchdog.ts";

const USAGE = `usage: npm run watchdog [-- --once]
  --once   one check: print the reading and the decision, never restart (exit 1 if the reading failed)
Settings come from the environment (and .env): WATCHDOG_CONTAINER, WATCHDOG_INTERVAL_S,
WATCHDOG_THRESHOLD_MIB, WATCHDOG_CONSECUTIVE, WATCHDOG_COOLDOWN_S, WATCHDOG_MAX_RESTARTS_PER_HOUR,
WATCHDOG_EXEC_TIMEOUT_S, WATCHDOG_STOP_TIMEOUT_S, WATCHDOG_METRICS_HOST, WATCHDOG_METRICS_PORT,
DOCKER_HOST, LOG_LEVEL.`;

function summary(report: CheckReport, settings: WatchdogSettings): string {
  const lines = [`container ${report.container}:`];
  if (report.reading.ok) {
    for (const gpu of report.reading.gpus) {
      const high = gpu.usedMiB > settings.thresholdMiB ? "  ABOVE threshold" : "";
      lines.push(`  GPU ${gpu.index}: ${gpu.usedMiB} / ${gpu.totalMiB} MiB used${high}`);
    }
  } else {
    lines.push(`  reading failed (${report.failure?.kind}): ${report.reading.error}`);
  }
  const d = report.decision;
  lines.push(
    `  threshold ${settings.thresholdMiB} MiB, ${settings.consecutive} consecutive checks; streak ${d.streak}/${settings.consecutive}`,
    `decision: ${d.action} (${d.reason})${d.action === "restart" ? " (--once is a dry run: not restarted)" : ""}`,
  );
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { once: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  loadEnvFile();

  const settings = loadWatchdogSettings(process.env);
  const logger = pino({ name: "vram-watchdog", level: settings.logLevel });
  // A hung engine must not stall the loop forever: bound every Docker call (a restart waits for
  // the stop timeout, so leave room for it).
  const docker = createDockerode(settings.docker, (settings.stopTimeoutS + 60) * 1000);
  const runtime = new DockerodeRuntime(docker, logger);
  if (values.once) {
    const watchdog = new Watchdog({ runtime, settings, logger });
    const report = await watchdog.check({ dryRun: true });
    process.stdout.write(summary(report, settings));
    return report.reading.ok ? 0 : 1;
  }

  const metrics = new WatchdogMetrics(settings);
  const watchdog = new Watchdog({
    runtime,
    settings,
    logger,
    onReport: (report) => metrics.record(report),
  });
  const metricsServer =
    settings.metrics.port === 0
      ? undefined
      : await serveMetrics(metrics.registry, { ...settings.metrics, logger });

  logger.info(
    {
      container: settings.container,
      intervalS: settings.intervalS,
      thresholdMiB: settings.thresholdMiB,
      consecutive: settings.consecutive,
      cooldownS: settings.cooldownS,
      maxRestartsPerHour: settings.maxRestartsPerHour,
      docker: settings.docker,
      metrics: metricsServer
        ? `http://${settings.metrics.host}:${settings.metrics.port}/metrics`
        : "off",
    },
    "VRAM watchdog started",
  );
  const stop = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      logger.info({ signal }, "VRAM watchdog stopping");
      stop.abort();
    });
  }
  await watchdog.run(stop.signal);
  metricsServer?.close();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `vram-watchdog: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 2;
  },
);
