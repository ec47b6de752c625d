/**
 * The watchdog's Prometheus metrics: each GPU's last reading, the streak, checks, restarts and
 * alerts. One Registry per Watchdog (no global registry), served on WATCHDOG_METRICS_PORT.
 */
import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import { Counter, Gauge, Registry } from "prom-client";
import type { CheckReport } from "./watchdog.ts";

export class WatchdogMetrics {
  readonly registry = new Registry();
  readonly #used: Gauge<"gpu">;
  readonly #total: Gauge<"gpu">;
  readonly #streak: Gauge;
  readonly #checks: Counter<"result">;
  readonly #restarts: Counter<"outcome">;
  readonly #alerts: Counter;

  constructor(settings: { thresholdMiB: number; consecutive: number }) {
    const registers = [this.registry];
    this.#used = new Gauge({
      name: "sidecar_watchdog_gpu_memory_used_mib",
      help: "GPU memory in use at the last successful reading, MiB (nvidia-smi in the container).",
      labelNames: ["gpu"],
      registers,
    });
    this.#total = new Gauge({
      name: "sidecar_watchdog_gpu_memory_total_mib",
      help: "GPU memory in total at the last successful reading, MiB.",
      labelNames: ["gpu"],
      registers,
    });
    new Gauge({
      name: "sidecar_watchdog_threshold_mib",
      help: "A GPU is high above this much memory in use, MiB (WATCHDOG_THRESHOLD_MIB).",
      registers,
    }).set(settings.thresholdMiB);
    new Gauge({
      name: "sidecar_watchdog_consecutive",
      help: "High readings in a row that trigger a restart (WATCHDOG_CONSECUTIVE).",
      registers,
    }).set(settings.consecutive);
    this.#streak = new Gauge({
      name: "sidecar_watchdog_streak",
      help: "The longest current run of high readings over all GPUs.",
      registers,
    });
    this.#checks = new Counter({
      name: "sidecar_watchdog_checks_total",
      help: "VRAM checks, by result (ok: a reading; failed: Docker or nvidia-smi failed).",
      labelNames: ["result"],
      registers,
    });
    this.#restarts = new Counter({
      name: "sidecar_watchdog_restarts_total",
      help: "Container restarts, by outcome (confirmed by a new StartedAt, or failed).",
      labelNames: ["outcome"],
      registers,
    });
    this.#alerts = new Counter({
      name: "sidecar_watchdog_alerts_total",
      help: "Restarts withheld because the hourly cap was reached (alert only).",
      registers,
    });
    // Present at zero from the start, so rate() and alerts see the series before the first event.
    for (const result of ["ok", "failed"]) this.#checks.inc({ result }, 0);
    for (const outcome of ["confirmed", "failed"]) this.#restarts.inc({ outcome }, 0);
  }

  record(report: CheckReport): void {
    if (report.reading.ok) {
      this.#checks.inc({ result: "ok" });
      for (const gpu of report.reading.gpus) {
        this.#used.set({ gpu: String(gpu.index) }, gpu.usedMiB);
        this.#total.set({ gpu: String(gpu.index) }, gpu.totalMiB);
      }
    } else {
      this.#checks.inc({ result: "failed" });
    }
    this.#streak.set(report.decision.streak);
    if (report.decision.action === "alert") this.#alerts.inc();
    if (report.restart) {
      this.#restarts.inc({ outcome: report.restart.confirmed ? "confirmed" : "failed" });
    }
  }
}

/** `GET /metrics` (Prometheus text format) and nothing else, on a plain HTTP listener. */
export function serveMetrics(
  registry: Registry,
  options: { host: string; port: number; logger: Logger },
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found: GET /metrics only.\n");
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (error: unknown) => {
        options.logger.error({ err: error }, "metrics could not be collected");
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
