/**
 * `npm start`: the edge and the GPU node in one terminal, each restarted when it crashes.
 *
 * The local counterpart of compose's `restart: unless-stopped`: a crashed service comes back with
 * exponential backoff (policy.ts), the other keeps serving meanwhile (the edge answers 503
 * gpu_node_unavailable while the GPU node is down), and Ctrl-C stops both. Output lines are
 * prefixed with the service's name; the supervisor's own lines are JSON like the services'.
 *
 * Written here rather than with `concurrently --restart-tries`: its exponential delay has no cap,
 * never resets after a healthy run, and a service that once exits 0 is never restarted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pino from "pino";
import {
  DEFAULT_RESTART_POLICY,
  decideRestart,
  NO_HISTORY,
  type RestartHistory,
  type RestartPolicy,
} from "./policy.ts";

interface ServiceSpec {
  name: string;
  entry: string;
  color: number;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SERVICES: ServiceSpec[] = [
  { name: "edge", entry: "edge/node.ts", color: 36 },
  { name: "gpu", entry: "gpu-node/main.ts", color: 35 },
];
/** How long a service may take to stop after Ctrl-C before it is killed. */
const STOP_GRACE_MS = 20_000;

const logger = pino({ name: "supervisor", base: { pid: process.pid } });
const useColor = process.stdout.isTTY === true;

function prefixed(spec: ServiceSpec, stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) {
  const tag = useColor ? `\x1b[${spec.color}m[${spec.name}]\x1b[0m` : `[${spec.name}]`;
  createInterface({ input: stream }).on("line", (line) => out.write(`${tag} ${line}\n`));
}

class Service {
  child: ChildProcess | undefined;
  startedAt = 0;
  history: RestartHistory = NO_HISTORY;
  timer: NodeJS.Timeout | undefined;
  exited: Promise<void> = Promise.resolve();

  constructor(
    readonly spec: ServiceSpec,
    readonly policy: RestartPolicy,
    readonly stopping: () => boolean,
  ) {}

  start(): void {
    this.timer = undefined;
    if (this.stopping()) return;
    this.startedAt = Date.now();
    // One process per service (no tsx wrapper process), so a signal reaches the service itself.
    const child = spawn(process.execPath, ["--import", "tsx", this.spec.entry], {
      cwd: ROOT,
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    if (child.stdout) prefixed(this.spec, child.stdout, process.stdout);
    if (child.stderr) prefixed(this.spec, child.stderr, process.stderr);
    logger.info({ service: this.spec.name, child_pid: child.pid }, `${this.spec.name} started`);
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.child = undefined;
        // A terminal's Ctrl-C reaches the service and the supervisor at once: give our own
        // signal handler a moment to mark the stop before deciding on a restart.
        setTimeout(() => {
          this.onExit(code, signal);
          resolve();
        }, 200);
      });
    });
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const ranForMs = Date.now() - this.startedAt;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (this.stopping()) {
      logger.info({ service: this.spec.name, code, signal }, `${this.spec.name} stopped (${how})`);
      return;
    }
    const { decision, history } = decideRestart(this.policy, this.history, {
      at: Date.now(),
      ranForMs,
    });
    this.history = history;
    if (decision.action === "give_up") {
      logger.error(
        { service: this.spec.name, code, signal, reason: decision.reason },
        `${this.spec.name} exited (${how}); not restarting: ${decision.reason}`,
      );
      return;
    }
    logger.warn(
      {
        service: this.spec.name,
        code,
        signal,
        ran_for_ms: ranForMs,
        restart_in_ms: decision.delayMs,
        attempt: decision.attempt,
      },
      `${this.spec.name} exited (${how}); restarting in ${decision.delayMs} ms`,
    );
    this.timer = setTimeout(() => this.start(), decision.delayMs);
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    const killer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(killer);
  }
}

function main(): void {
  let stopping = false;
  const services = SERVICES.map(
    (spec) => new Service(spec, DEFAULT_RESTART_POLICY, () => stopping),
  );
  for (const service of services) service.start();

  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info(
      { signal },
      `${signal}: stopping ${services.map((s) => s.spec.name).join(" and ")}`,
    );
    // A terminal's Ctrl-C reaches the services too (same process group); they ignore the repeat.
    await Promise.all(services.map((s) => s.stop("SIGTERM")));
    logger.info("all services stopped");
    process.exit(0);
  };
  process.on("SIGINT", (signal) => void stop(signal));
  process.on("SIGTERM", (signal) => void stop(signal));
}

main();
