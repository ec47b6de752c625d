/**
 * The VRAM watchdog's decision, as a pure function: one reading, the state so far and the settings
 * in; the action to take and the next state out. No I/O, no clock: the caller passes `nowMs`.
 *
 * Rules (README "VRAM watchdog"):
 * - A GPU is high when its memory in use is strictly above the threshold (the seed: "above 10.5 GB").
 * - Each GPU keeps its own streak of consecutive high readings; a low reading of that GPU ends it.
 *   When any GPU's streak reaches `consecutive`, the container is restarted.
 * - A failed reading (nvidia-smi failed, container missing, Docker unreachable...) never counts as
 *   high and never restarts; it ends every streak, since "consecutive checks above" needs checks
 *   that actually saw the memory.
 * - After a restart, a cool-down: readings are not counted until it ends, so a container whose
 *   models take a while to load (and briefly use a lot of memory) is not restarted in a loop.
 * - At most `maxRestartsPerHour` restarts in any rolling hour (attempts count, successful or not).
 *   Past the cap a full streak raises an alert instead, and the streak starts over, so an alert
 *   repeats at most once every `consecutive` checks.
 */

export interface GpuMemory {
  /** nvidia-smi's GPU index. */
  index: number;
  usedMiB: number;
  totalMiB: number;
}

export type Reading = { ok: true; gpus: GpuMemory[] } | { ok: false; error: string };

export interface PolicySettings {
  /** High when memory used is strictly above this, MiB. */
  thresholdMiB: number;
  /** High readings in a row (per GPU) that trigger a restart. */
  consecutive: number;
  /** After a restart, readings are ignored for this long, seconds. */
  cooldownS: number;
  /** Restarts allowed in any rolling hour; past it, alerts only. 0 = never restart. */
  maxRestartsPerHour: number;
}

export interface PolicyState {
  /** Per GPU index: memory used (MiB) of each high reading in the current streak, oldest first. */
  streaks: Readonly<Record<number, readonly number[]>>;
  /** Times (ms) of the restarts decided in the last hour, oldest first. */
  restartsMs: readonly number[];
}

export const initialPolicyState: PolicyState = { streaks: {}, restartsMs: [] };

export type DecisionReason =
  | "below_threshold"
  | "high_counting"
  | "reading_failed"
  | "cooldown"
  | "streak_complete"
  | "restart_cap_reached";

export type Action = "none" | "restart" | "alert";

/** The high readings that led to a restart or an alert. */
export interface Evidence {
  gpu: number;
  /** Memory used of each reading in the streak, MiB, oldest first. */
  usedMiB: number[];
}

export interface Decision {
  action: Action;
  reason: DecisionReason;
  /** Longest current streak (after this reading), for logs: "2/3". */
  streak: number;
  /** Set when action is restart or alert. */
  evidence?: Evidence[];
  /** ms left of the cool-down, when reason is cooldown. */
  cooldownLeftMs?: number;
  /** Restarts in the last hour, including one decided now. */
  restartsLastHour: number;
  next: PolicyState;
}

const HOUR_MS = 3_600_000;

export function decide(
  reading: Reading,
  state: PolicyState,
  settings: PolicySettings,
  nowMs: number,
): Decision {
  const restartsMs = state.restartsMs.filter((t) => nowMs - t < HOUR_MS);
  const base = { restartsLastHour: restartsMs.length };

  if (!reading.ok) {
    return {
      ...base,
      action: "none",
      reason: "reading_failed",
      streak: 0,
      next: { streaks: {}, restartsMs },
    };
  }

  const lastRestart = restartsMs.at(-1);
  const cooldownLeftMs =
    lastRestart === undefined ? 0 : lastRestart + settings.cooldownS * 1000 - nowMs;
  if (cooldownLeftMs > 0) {
    return {
      ...base,
      action: "none",
      reason: "cooldown",
      streak: 0,
      cooldownLeftMs,
      next: { streaks: {}, restartsMs },
    };
  }

  // GPUs absent from this reading lose their streak: a streak is consecutive readings of one GPU.
  const streaks: Record<number, number[]> = {};
  for (const gpu of reading.gpus) {
    if (gpu.usedMiB > settings.thresholdMiB) {
      streaks[gpu.index] = [...(state.streaks[gpu.index] ?? []), gpu.usedMiB].slice(
        -settings.consecutive,
      );
    }
  }
  const complete: Evidence[] = Object.entries(streaks)
    .filter(([, used]) => used.length >= settings.consecutive)
    .map(([gpu, used]) => ({ gpu: Number(gpu), usedMiB: used }));
  const streak = Math.max(0, ...Object.values(streaks).map((used) => used.length));

  if (complete.length === 0) {
    return {
      ...base,
      action: "none",
      reason: streak > 0 ? "high_counting" : "below_threshold",
      streak,
      next: { streaks, restartsMs },
    };
  }

  if (restartsMs.length >= settings.maxRestartsPerHour) {
    return {
      ...base,
      action: "alert",
      reason: "restart_cap_reached",
      streak,
      evidence: complete,
      next: { streaks: {}, restartsMs },
    };
  }

  const after = [...restartsMs, nowMs];
  return {
    action: "restart",
    reason: "streak_complete",
    streak,
    evidence: complete,
    restartsLastHour: after.length,
    next: { streaks: {}, restartsMs: after },
  };
}
