import { describe, expect, it } from "vitest";
import {
  DEFAULT_RESTART_POLICY,
  decideRestart,
  NO_HISTORY,
  type RestartHistory,
} from "../../docker/supervisor/policy.ts";

const policy = { ...DEFAULT_RESTART_POLICY, baseMs: 1000, capMs: 8000, maxRestarts: 5 };

function crashLoop(times: number, ranForMs: number, every = 1000) {
  let history: RestartHistory = NO_HISTORY;
  const decisions = [];
  for (let i = 0; i < times; i++) {
    const r = decideRestart(policy, history, { at: i * every, ranForMs });
    history = r.history;
    decisions.push(r.decision);
  }
  return decisions;
}

describe("restart policy", () => {
  it("backs off exponentially up to the cap", () => {
    const delays = crashLoop(5, 10).map((d) => (d.action === "restart" ? d.delayMs : -1));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
  });

  it("gives up after maxRestarts within the window, and says why", () => {
    const last = crashLoop(6, 10).at(-1);
    expect(last).toEqual({ action: "give_up", reason: "5 restarts within 600 s" });
  });

  it("forgets restarts older than the window", () => {
    const decisions = crashLoop(8, 10, policy.windowMs / 4);
    expect(decisions.every((d) => d.action === "restart")).toBe(true);
  });

  it("a healthy run resets the backoff", () => {
    let history: RestartHistory = NO_HISTORY;
    for (let i = 0; i < 3; i++)
      history = decideRestart(policy, history, { at: i, ranForMs: 5 }).history;
    const after = decideRestart(policy, history, { at: 10, ranForMs: policy.healthyAfterMs });
    expect(after.decision).toEqual({ action: "restart", delayMs: 1000, attempt: 4 });
  });
});
