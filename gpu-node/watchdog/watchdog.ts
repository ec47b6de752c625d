/**
 * One watchdog check: read GPU memory in the container (docker exec nvidia-smi), decide (policy.ts),
 * act (restart, confirmed by a new State.StartedAt), log one line. And the loop that repeats it.
 * Nothing here throws for an expected failure: a missing container, a stopped one, a Docker socket
 * that is gone or an nvidia-smi that fails are logged and the loop goes on.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { ContainerRuntime, DockerFailureKind } from "./docker.ts";
import { NVIDIA_SMI_QUERY, parseNvidiaSmi } from "./nvidia-smi.ts";
import {
  type Decision,
  decide,
  initialPolicyState,
  type PolicySettings,
  type PolicyState,
  type Reading,
} from "./policy.ts";
import type { WatchdogSettings } from "./settings.ts";

export type ReadingFailureKind = DockerFailureKind | "nvidia_smi_failed" | "nvidia_smi_unparseable";

export interface ReadingFailure {
  kind: ReadingFailureKind;
  message: string;
  exitCode?: number;
}

export interface GpuReadingResult {
  reading: Reading;
  failure?: ReadingFailure;
}

const SNIPPET_CHARS = 300;

/** Reads per-GPU memory in use by running nvidia-smi inside the container. */
export async function readGpuMemory(
  runtime: ContainerRuntime,
  container: string,
  timeoutMs: number,
): Promise<GpuReadingResult> {
  const failed = (failure: ReadingFailure): GpuReadingResult => ({
    reading: { ok: false, error: failure.message },
    failure,
  });
  const state = await runtime.inspect(container);
  if (!state.ok) return failed(state.failure);
  if (!state.value.running) {
    return failed({
      kind: "container_not_running",
      message: `container ${container} is ${state.value.status}, not running`,
    });
  }
  const out = await runtime.exec(container, NVIDIA_SMI_QUERY, timeoutMs);
  if (!out.ok) return failed(out.failure);
  const { exitCode, stdout, stderr } = out.value;
  if (exitCode !== 0) {
    const said = (stderr.trim() || stdout.trim()).slice(0, SNIPPET_CHARS);
    return failed({
      kind: "nvidia_smi_failed",
      message: `nvidia-smi exited with code ${exitCode} in ${container}${said ? `: ${said}` : ""}`,
      exitCode,
    });
  }
  const parsed = parseNvidiaSmi(stdout);
  if (!parsed.ok) return failed({ kind: "nvidia_smi_unparseable", message: parsed.error });
  return { reading: parsed };
}

export interface RestartOutcome {
  /** True when the container came back with a new State.StartedAt and is running. */
  confirmed: boolean;
  startedAtBefore?: string;
  startedAtAfter?: string;
  error?: string;
}

/** Restarts the container and confirms it by a changed State.StartedAt. */
export async function restartAndConfirm(
  runtime: ContainerRuntime,
  container: string,
  stopTimeoutS: number,
  confirmTimeoutMs = 15_000,
): Promise<RestartOutcome> {
  const before = await runtime.inspect(container);
  if (!before.ok) return { confirmed: false, error: before.failure.message };
  const startedAtBefore = before.value.startedAt;
  const restarted = await runtime.restart(container, stopTimeoutS);
  if (!restarted.ok) return { confirmed: false, startedAtBefore, error: restarted.failure.message };
  // Docker answers the restart call once the container is started again; poll briefly anyway in
  // case an engine answers earlier.
  const deadline = Date.now() + confirmTimeoutMs;
  for (;;) {
    const after = await runtime.inspect(container);
    if (!after.ok) return { confirmed: false, startedAtBefore, error: after.failure.message };
    const startedAtAfter = after.value.startedAt;
    if (startedAtAfter !== startedAtBefore && after.value.running) {
      return { confirmed: true, startedAtBefore, startedAtAfter };
    }
    if (Date.now() >= deadline) {
      return {
        confirmed: false,
        startedAtBefore,
        startedAtAfter,
        error: `restart not confirmed: State.StartedAt ${startedAtAfter}, status ${after.value.status}`,
      };
    }
    await sleep(200);
  }
}

export interface CheckReport {
  container: string;
  reading: Reading;
  failure?: ReadingFailure;
  decision: Omit<Decision, "next">;
  /** Present when the decision was restart and this was not a dry run. */
  restart?: RestartOutcome;
}

export interface WatchdogDeps {
  runtime: ContainerRuntime;
  settings: WatchdogSettings;
  logger: Logger;
  /** Clock for the policy (cool-down, hourly cap), ms. */
  now?: () => number;
  /** Called with every check's report (metrics). */
  onReport?: (report: CheckReport) => void;
}

export class Watchdog {
  private state: PolicyState = initialPolicyState;
  private readonly policy: PolicySettings;
  private readonly now: () => number;

  constructor(private readonly deps: WatchdogDeps) {
    const { settings } = deps;
    this.policy = {
      thresholdMiB: settings.thresholdMiB,
      consecutive: settings.consecutive,
      cooldownS: settings.cooldownS,
      maxRestartsPerHour: settings.maxRestartsPerHour,
    };
    this.now = deps.now ?? Date.now;
  }

  /** One check. `dryRun` decides but never restarts (for `--once`). */
  async check(options: { dryRun?: boolean } = {}): Promise<CheckReport> {
    const { runtime, settings, logger } = this.deps;
    const container = settings.container;
    const { reading, failure } = await readGpuMemory(
      runtime,
      container,
      settings.execTimeoutS * 1000,
    );
    const { next, ...decision } = decide(reading, this.state, this.policy, this.now());
    this.state = next;

    const line = {
      container,
      gpus: reading.ok ? reading.gpus : undefined,
      failure,
      thresholdMiB: settings.thresholdMiB,
      action: decision.action,
      reason: decision.reason,
      streak: `${decision.streak}/${settings.consecutive}`,
      evidence: decision.evidence,
      cooldownLeftS:
        decision.cooldownLeftMs === undefined
          ? undefined
          : Math.ceil(decision.cooldownLeftMs / 1000),
      restartsLastHour: decision.restartsLastHour,
      dryRun: options.dryRun || undefined,
    };
    if (decision.action === "alert") {
      logger.error(
        line,
        `VRAM above ${settings.thresholdMiB} MiB for ${settings.consecutive} checks but ${decision.restartsLastHour} restarts in the last hour reached the cap (${settings.maxRestartsPerHour}): not restarting ${container}`,
      );
    } else if (decision.action === "restart") {
      logger.warn(line, `VRAM above threshold: restarting ${container}`);
    } else if (failure) {
      logger.warn(line, `VRAM check failed: ${failure.message}`);
    } else {
      logger.info(line, "VRAM check");
    }

    const report: CheckReport = { container, reading, decision };
    if (failure) report.failure = failure;
    if (decision.action === "restart" && !options.dryRun) {
      const outcome = await restartAndConfirm(runtime, container, settings.stopTimeoutS);
      report.restart = outcome;
      const restartLine = { container, evidence: decision.evidence, ...outcome };
      if (outcome.confirmed) logger.warn(restartLine, `restarted ${container}`);
      else logger.error(restartLine, `restart of ${container} failed: ${outcome.error}`);
    }
    this.deps.onReport?.(report);
    return report;
  }

  /** Checks every `intervalS` until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    const { settings, logger } = this.deps;
    while (!signal.aborted) {
      try {
        await this.check();
      } catch (error) {
        // A bug, not an expected failure (those are values): log it and keep watching.
        logger.error({ err: error }, "watchdog check crashed; continuing");
      }
      try {
        await sleep(settings.intervalS * 1000, undefined, { signal });
      } catch {
        // Aborted: leave the loop.
      }
    }
  }
}
