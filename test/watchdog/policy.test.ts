import { describe, expect, it } from "vitest";
import {
  type Decision,
  decide,
  type GpuMemory,
  initialPolicyState,
  type PolicySettings,
  type PolicyState,
  type Reading,
} from "../../gpu-node/watchdog/policy.ts";

const SEED: PolicySettings = {
  thresholdMiB: 10_500,
  consecutive: 3,
  cooldownS: 300,
  maxRestartsPerHour: 3,
};
const TOTAL = 24_576;
const MIN = 60_000;

/** One GPU (index 0) using `used` MiB. */
function gpu0(used: number): Reading {
  return { ok: true, gpus: [{ index: 0, usedMiB: used, totalMiB: TOTAL }] };
}
function gpus(...used: number[]): Reading {
  return {
    ok: true,
    gpus: used.map((usedMiB, index): GpuMemory => ({ index, usedMiB, totalMiB: TOTAL })),
  };
}
const FAILED: Reading = { ok: false, error: "nvidia-smi exited with code 9" };

/** Feeds readings one per minute from `startMs`; returns every decision. */
function run(
  readings: Reading[],
  settings: PolicySettings = SEED,
  state: PolicyState = initialPolicyState,
  startMs = 0,
  stepMs = MIN,
): Decision[] {
  const out: Decision[] = [];
  let s = state;
  readings.forEach((reading, i) => {
    const d = decide(reading, s, settings, startMs + i * stepMs);
    out.push(d);
    s = d.next;
  });
  return out;
}
const actions = (ds: Decision[]) => ds.map((d) => d.action);

describe("threshold boundary", () => {
  it("is strictly above: exactly the threshold is not high, one MiB more is", () => {
    expect(actions(run([gpu0(10_500), gpu0(10_500), gpu0(10_500), gpu0(10_500)]))).toEqual([
      "none",
      "none",
      "none",
      "none",
    ]);
    expect(run([gpu0(10_500)])[0]?.reason).toBe("below_threshold");
    expect(actions(run([gpu0(10_501), gpu0(10_501), gpu0(10_501)]))).toEqual([
      "none",
      "none",
      "restart",
    ]);
  });

  it("follows the threshold setting", () => {
    const low = { ...SEED, thresholdMiB: 100 };
    expect(actions(run([gpu0(101), gpu0(101), gpu0(101)], low))).toEqual([
      "none",
      "none",
      "restart",
    ]);
    expect(actions(run([gpu0(100), gpu0(100), gpu0(100)], low))).toEqual(["none", "none", "none"]);
  });
});

describe("consecutive counting", () => {
  it("restarts on the third consecutive high reading, not the second", () => {
    const ds = run([gpu0(11_000), gpu0(11_500), gpu0(12_000)]);
    expect(ds.map((d) => [d.action, d.reason, d.streak])).toEqual([
      ["none", "high_counting", 1],
      ["none", "high_counting", 2],
      ["restart", "streak_complete", 3],
    ]);
    expect(ds[2]?.evidence).toEqual([{ gpu: 0, usedMiB: [11_000, 11_500, 12_000] }]);
  });

  it("a low reading resets the count", () => {
    const ds = run([gpu0(11_000), gpu0(11_000), gpu0(9_000), gpu0(11_000), gpu0(11_000)]);
    expect(actions(ds)).toEqual(["none", "none", "none", "none", "none"]);
    expect(ds.map((d) => d.streak)).toEqual([1, 2, 0, 1, 2]);
    expect(actions(run([gpu0(11_000)], SEED, ds[4]?.next, 5 * MIN))).toEqual(["restart"]);
  });

  it("honours other counts, including 1", () => {
    expect(actions(run([gpu0(11_000)], { ...SEED, consecutive: 1 }))).toEqual(["restart"]);
    const five = run(
      Array.from({ length: 5 }, () => gpu0(11_000)),
      { ...SEED, consecutive: 5 },
    );
    expect(actions(five)).toEqual(["none", "none", "none", "none", "restart"]);
    expect(five[4]?.evidence?.[0]?.usedMiB).toHaveLength(5);
  });

  it("does not change the state it was given", () => {
    const state: PolicyState = { streaks: { 0: [11_000] }, restartsMs: [] };
    const frozen = structuredClone(state);
    decide(gpu0(12_000), state, SEED, 0);
    decide(FAILED, state, SEED, 0);
    expect(state).toEqual(frozen);
  });
});

describe("several GPUs", () => {
  it("restarts when one GPU stays high while the others are low", () => {
    const ds = run([gpus(1_000, 11_000), gpus(1_000, 11_000), gpus(1_000, 11_000)]);
    expect(actions(ds)).toEqual(["none", "none", "restart"]);
    expect(ds[2]?.evidence).toEqual([{ gpu: 1, usedMiB: [11_000, 11_000, 11_000] }]);
  });

  it("counts each GPU on its own: alternating high GPUs never make a streak", () => {
    const readings = [gpus(11_000, 1_000), gpus(1_000, 11_000)];
    const ds = run([...readings, ...readings, ...readings]);
    expect(actions(ds).every((a) => a === "none")).toBe(true);
    expect(Math.max(...ds.map((d) => d.streak))).toBe(1);
  });

  it("reports every GPU whose streak completed", () => {
    const ds = run([gpus(11_000, 12_000), gpus(11_000, 12_000), gpus(11_000, 12_000)]);
    expect(ds[2]?.action).toBe("restart");
    expect(ds[2]?.evidence?.map((e) => e.gpu)).toEqual([0, 1]);
  });

  it("a GPU missing from a reading loses its streak", () => {
    const only1: Reading = { ok: true, gpus: [{ index: 1, usedMiB: 1_000, totalMiB: TOTAL }] };
    const ds = run([gpus(11_000, 1_000), gpus(11_000, 1_000), only1, gpus(11_000, 1_000)]);
    expect(ds.map((d) => d.streak)).toEqual([1, 2, 0, 1]);
    expect(actions(ds)).toEqual(["none", "none", "none", "none"]);
  });
});

describe("failed readings", () => {
  it("never count as high and never restart, however many", () => {
    const ds = run(Array.from({ length: 20 }, () => FAILED));
    expect(actions(ds).every((a) => a === "none")).toBe(true);
    expect(ds.every((d) => d.reason === "reading_failed" && d.streak === 0)).toBe(true);
  });

  it("break a streak: high, high, failed, high does not restart", () => {
    const ds = run([gpu0(11_000), gpu0(11_000), FAILED, gpu0(11_000), gpu0(11_000)]);
    expect(actions(ds)).toEqual(["none", "none", "none", "none", "none"]);
    expect(ds.map((d) => d.streak)).toEqual([1, 2, 0, 1, 2]);
  });

  it("during a streak at the edge (two highs then failures) never restart", () => {
    const ds = run([gpu0(11_000), gpu0(11_000), FAILED, FAILED, FAILED]);
    expect(actions(ds)).toEqual(["none", "none", "none", "none", "none"]);
  });
});

describe("cool-down after a restart", () => {
  const high3 = [gpu0(11_000), gpu0(11_000), gpu0(11_000)];

  it("ignores readings until the cool-down ends, then counts afresh", () => {
    // Restart at t=2 min; cool-down 300 s ends at t=7 min.
    const ds = run(Array.from({ length: 10 }, () => gpu0(11_000)));
    expect(actions(ds)).toEqual([
      "none",
      "none",
      "restart", // t=2
      "none", // t=3 cool-down
      "none", // t=4
      "none", // t=5
      "none", // t=6
      "none", // t=7: cool-down over, streak 1
      "none", // t=8: 2
      "restart", // t=9: 3
    ]);
    expect(ds.slice(3, 7).every((d) => d.reason === "cooldown")).toBe(true);
    expect(ds[3]?.cooldownLeftMs).toBe(240_000);
    expect(ds[6]?.cooldownLeftMs).toBe(60_000);
    expect(ds[7]?.reason).toBe("high_counting");
  });

  it("ends exactly cooldownS after the restart", () => {
    const restarted = run(high3)[2];
    expect(restarted?.action).toBe("restart");
    const restartAt = 2 * MIN;
    const justBefore = decide(
      gpu0(11_000),
      restarted?.next ?? initialPolicyState,
      SEED,
      restartAt + 299_999,
    );
    expect(justBefore.reason).toBe("cooldown");
    expect(justBefore.cooldownLeftMs).toBe(1);
    const atEnd = decide(
      gpu0(11_000),
      restarted?.next ?? initialPolicyState,
      SEED,
      restartAt + 300_000,
    );
    expect(atEnd.reason).toBe("high_counting");
  });

  it("a zero cool-down counts again right away", () => {
    const ds = run(
      Array.from({ length: 6 }, () => gpu0(11_000)),
      { ...SEED, cooldownS: 0 },
    );
    expect(actions(ds)).toEqual(["none", "none", "restart", "none", "none", "restart"]);
  });

  it("failed readings during the cool-down stay failures", () => {
    const ds = run([...high3, FAILED]);
    expect(ds[3]?.reason).toBe("reading_failed");
  });
});

describe("restart cap per hour", () => {
  const noCooldown = { ...SEED, cooldownS: 0, maxRestartsPerHour: 2 };

  it("alerts instead of restarting once the cap is reached, then restarts again after an hour", () => {
    // One reading a minute, always high: restarts at t=2 and t=5; at t=8 the cap (2/h) holds.
    const ds = run(
      Array.from({ length: 12 }, () => gpu0(11_000)),
      noCooldown,
    );
    expect(actions(ds)).toEqual([
      "none",
      "none",
      "restart",
      "none",
      "none",
      "restart",
      "none",
      "none",
      "alert",
      "none",
      "none",
      "alert",
    ]);
    const alert = ds[8];
    expect(alert?.reason).toBe("restart_cap_reached");
    expect(alert?.evidence).toEqual([{ gpu: 0, usedMiB: [11_000, 11_000, 11_000] }]);
    expect(alert?.restartsLastHour).toBe(2);

    // At t=62 min the restart of t=2 has left the rolling hour: the next full streak restarts.
    const later = run(
      [gpu0(11_000), gpu0(11_000), gpu0(11_000)],
      noCooldown,
      ds[11]?.next,
      60 * MIN,
    );
    expect(actions(later)).toEqual(["none", "none", "restart"]);
    expect(later[2]?.restartsLastHour).toBe(2);
  });

  it("a cap of 0 only ever alerts", () => {
    const ds = run([gpu0(11_000), gpu0(11_000), gpu0(11_000)], { ...SEED, maxRestartsPerHour: 0 });
    expect(actions(ds)).toEqual(["none", "none", "alert"]);
  });

  it("counts restarts in a rolling hour, to the millisecond", () => {
    const state: PolicyState = { streaks: { 0: [11_000, 11_000] }, restartsMs: [0, 1_000] };
    const capped = { ...noCooldown, maxRestartsPerHour: 2 };
    expect(decide(gpu0(11_000), state, capped, 3_599_999).action).toBe("alert");
    expect(decide(gpu0(11_000), state, capped, 3_600_000).action).toBe("restart");
  });

  it("records each restart it decides", () => {
    const ds = run([gpu0(11_000), gpu0(11_000), gpu0(11_000)], SEED, initialPolicyState, 5_000);
    expect(ds[2]?.next.restartsMs).toEqual([5_000 + 2 * MIN]);
    expect(ds[2]?.restartsLastHour).toBe(1);
    expect(ds[2]?.next.streaks).toEqual({});
  });
});
