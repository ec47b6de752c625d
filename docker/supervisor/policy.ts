/**
 * When to restart a crashed service, as a pure function of its history (no clock, no I/O).
 *
 * Exponential backoff from `baseMs`, capped at `capMs`; a run that lasted `healthyAfterMs` counts
 * as healthy and resets the backoff; more than `maxRestarts` restarts within `windowMs` gives up
 * on that service (the others keep running), so a service that can never start does not spin.
 */
export interface RestartPolicy {
  baseMs: number;
  capMs: number;
  healthyAfterMs: number;
  maxRestarts: number;
  windowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  baseMs: 1_000,
  capMs: 30_000,
  healthyAfterMs: 60_000,
  maxRestarts: 10,
  windowMs: 10 * 60_000,
};

export type RestartDecision =
  | { action: "restart"; delayMs: number; attempt: number }
  | { action: "give_up"; reason: string };

export interface RestartHistory {
  /** Consecutive short runs (the backoff exponent). */
  readonly failures: number;
  /** When each restart in the window was decided, ms. */
  readonly restarts: readonly number[];
}

export const NO_HISTORY: RestartHistory = { failures: 0, restarts: [] };

export function decideRestart(
  policy: RestartPolicy,
  history: RestartHistory,
  exit: { at: number; ranForMs: number },
): { decision: RestartDecision; history: RestartHistory } {
  const failures = exit.ranForMs >= policy.healthyAfterMs ? 0 : history.failures;
  const restarts = history.restarts.filter((t) => exit.at - t < policy.windowMs);
  if (restarts.length >= policy.maxRestarts) {
    return {
      decision: {
        action: "give_up",
        reason: `${restarts.length} restarts within ${Math.round(policy.windowMs / 1000)} s`,
      },
      history: { failures, restarts },
    };
  }
  const delayMs = Math.min(policy.capMs, policy.baseMs * 2 ** failures);
  return {
    decision: { action: "restart", delayMs, attempt: restarts.length + 1 },
    history: { failures: failures + 1, restarts: [...restarts, exit.at] },
  };
}
