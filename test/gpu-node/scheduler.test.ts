import { describe, expect, it } from "vitest";
import { ServiceError } from "../../gpu-node/contract/errors.ts";
import { ModelGate } from "../../gpu-node/scheduler/gate.ts";

/** A task whose end the test decides; it records the signal it ran under. */
function controllable<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  let started = false;
  let signal: AbortSignal | undefined;
  const done = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    task: (s: AbortSignal) => {
      started = true;
      signal = s;
      return done;
    },
    resolve: (value: T) => resolve(value),
    reject: (error: unknown) => reject(error),
    get started() {
      return started;
    },
    get signal() {
      return signal;
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("ModelGate", () => {
  it("admits up to `parallel` tasks and refuses beyond the waiting capacity", async () => {
    const queue = new ModelGate({ parallel: 2, maxWaiting: 1 });
    const tasks = [controllable<number>(), controllable<number>(), controllable<number>()];
    const runs = tasks.map((t) => queue.run(t.task));
    expect(tasks.map((t) => t.started)).toEqual([true, true, false]);
    expect(queue.stats()).toEqual({ running: 2, waiting: 1, capacity: 3 });

    await expect(queue.run(controllable<number>().task)).rejects.toMatchObject({
      code: "queue_full",
      status: 429,
    });

    tasks[0]?.resolve(1);
    await expect(runs[0]).resolves.toMatchObject({ value: 1 });
    expect(tasks[2]?.started).toBe(true);
    expect(queue.stats()).toEqual({ running: 2, waiting: 0, capacity: 3 });
    tasks[1]?.resolve(2);
    tasks[2]?.resolve(3);
    await expect(Promise.all(runs)).resolves.toHaveLength(3);
    expect(queue.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it("with no waiting room, refuses as soon as every slot is busy", async () => {
    const queue = new ModelGate({ parallel: 1, maxWaiting: 0 });
    const first = controllable<string>();
    const run = queue.run(first.task);
    await expect(queue.run(controllable<string>().task)).rejects.toMatchObject({
      code: "queue_full",
      status: 429,
    });
    first.resolve("ok");
    await run;
    await expect(queue.run(async () => "again")).resolves.toMatchObject({ value: "again" });
  });

  it("starts waiting tasks in FIFO order", async () => {
    const queue = new ModelGate({ parallel: 1, maxWaiting: 5 });
    const order: number[] = [];
    const head = controllable<void>();
    const first = queue.run(head.task);
    const rest = [1, 2, 3, 4].map((n) =>
      queue.run(async () => {
        order.push(n);
      }),
    );
    expect(order).toEqual([]);
    head.resolve();
    await first;
    await Promise.all(rest);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it("reports how long a task waited", async () => {
    let clock = 1_000;
    const queue = new ModelGate({ parallel: 1, maxWaiting: 1, now: () => clock });
    const head = controllable<void>();
    const first = queue.run(head.task);
    const second = queue.run(async () => "second");
    clock += 250;
    head.resolve();
    await expect(first).resolves.toMatchObject({ queueMs: 0 });
    await expect(second).resolves.toMatchObject({ value: "second", queueMs: 250 });
  });

  it("removes an aborted waiting task and frees its place in line", async () => {
    const queue = new ModelGate({ parallel: 1, maxWaiting: 1 });
    const head = controllable<void>();
    const first = queue.run(head.task);
    const waitingAbort = new AbortController();
    const waiting = controllable<void>();
    const second = queue.run(waiting.task, waitingAbort.signal);
    expect(queue.stats().waiting).toBe(1);

    waitingAbort.abort(new Error("client left"));
    await expect(second).rejects.toThrow("client left");
    expect(queue.stats()).toMatchObject({ running: 1, waiting: 0 });

    // Its place can be taken again, and it never starts.
    const third = queue.run(async () => "third");
    head.resolve();
    await first;
    await expect(third).resolves.toMatchObject({ value: "third" });
    expect(waiting.started).toBe(false);
  });

  it("aborting a running task rejects at once, fires its signal, and frees the slot when it stops", async () => {
    const queue = new ModelGate({ parallel: 1, maxWaiting: 1 });
    const abort = new AbortController();
    const running = controllable<void>();
    const first = queue.run(running.task, abort.signal);
    const next = controllable<string>();
    const second = queue.run(next.task);

    abort.abort(new Error("deadline"));
    await expect(first).rejects.toThrow("deadline");
    expect(running.signal?.aborted).toBe(true);
    // The runtime has not stopped yet: its slot stays taken.
    expect(queue.stats()).toMatchObject({ running: 1, waiting: 1 });
    expect(next.started).toBe(false);

    running.reject(running.signal?.reason);
    await tick();
    expect(next.started).toBe(true);
    next.resolve("next");
    await expect(second).resolves.toMatchObject({ value: "next" });
  });

  it("rejects at once when the signal is already aborted", async () => {
    const queue = new ModelGate({ parallel: 1, maxWaiting: 1 });
    const abort = new AbortController();
    abort.abort(new Error("gone"));
    const task = controllable<void>();
    await expect(queue.run(task.task, abort.signal)).rejects.toThrow("gone");
    expect(task.started).toBe(false);
    expect(queue.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it("a task that throws synchronously fails its caller and frees the slot", async () => {
    const queue = new ModelGate({ parallel: 1, maxWaiting: 0 });
    await expect(
      queue.run(() => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await expect(queue.run(async () => 1)).resolves.toMatchObject({ value: 1 });
  });

  it("estimates Retry-After from the work ahead and the smoothed task duration", async () => {
    let clock = 0;
    const queue = new ModelGate({
      parallel: 1,
      maxWaiting: 2,
      now: () => clock,
      initialEstimateMs: 4_000,
    });
    expect(queue.retryAfterSeconds()).toBe(1);

    const a = controllable<void>();
    const b = controllable<void>();
    const c = controllable<void>();
    const runs = [queue.run(a.task), queue.run(b.task), queue.run(c.task)];
    // 4 s left of the running one + 2 waiting × 4 s.
    expect(queue.retryAfterSeconds()).toBe(12);
    clock = 3_000;
    expect(queue.retryAfterSeconds()).toBe(9);

    const full = await queue.run(async () => undefined).catch((error: unknown) => error);
    expect(full).toBeInstanceOf(ServiceError);
    expect(full).toMatchObject({
      code: "queue_full",
      status: 429,
      details: { retry_after_s: 9, queue: { running: 1, waiting: 2, capacity: 3 } },
      headers: { "Retry-After": "9" },
    });

    // `a` took 3 s: the estimate moves toward it (0.3 × 3000 + 0.7 × 4000 = 3700 ms).
    a.resolve();
    await runs[0];
    expect(queue.throughputPerS).toBeCloseTo(1000 / 3_700);
    // b just started (3.7 s left) + c waiting (3.7 s) = 7.4 s.
    expect(queue.retryAfterSeconds()).toBe(8);
    b.resolve();
    c.resolve();
    await Promise.all(runs);
  });

  it("spreads the estimate over the slots", async () => {
    const queue = new ModelGate({
      parallel: 2,
      maxWaiting: 2,
      now: () => 0,
      initialEstimateMs: 10_000,
    });
    const tasks = [1, 2, 3, 4].map(() => controllable<void>());
    const runs = tasks.map((t) => queue.run(t.task));
    // (2 running × 10 s + 2 waiting × 10 s) / 2 slots.
    expect(queue.retryAfterSeconds()).toBe(20);
    for (const t of tasks) t.resolve();
    await Promise.all(runs);
  });

  it("measures throughput over busy time: a batch of 4 finishing together counts 4 completions", async () => {
    let clock = 0;
    const gate = new ModelGate({
      parallel: 4,
      maxWaiting: 4,
      now: () => clock,
      initialEstimateMs: 4_000,
    });
    // Until something finishes: 1 s of busy time per generation (4 s spread over 4 sequences).
    expect(gate.throughputPerS).toBeCloseTo(1);
    const batch = [1, 2, 3, 4].map(() => controllable<void>());
    const runs = batch.map((t) => gate.run(t.task));
    clock = 2_000;
    for (const t of batch) t.resolve();
    await Promise.all(runs);
    // Samples 2000, 0, 0, 0 ms of busy time per completion, smoothed from 1000 ms.
    let interval = 1_000;
    for (const sample of [2_000, 0, 0, 0]) interval = 0.3 * sample + 0.7 * interval;
    expect(gate.throughputPerS).toBeCloseTo(1000 / interval);

    // Idle time is not busy time: a gap before the next batch changes nothing.
    clock = 60_000;
    const next = controllable<void>();
    const run = gate.run(next.task);
    clock = 60_000 + interval;
    next.resolve();
    await run;
    expect(gate.throughputPerS).toBeCloseTo(1000 / interval);
  });

  it("Retry-After is the work ahead at the measured throughput, less the busy time spent", async () => {
    let clock = 0;
    const gate = new ModelGate({
      parallel: 2,
      maxWaiting: 2,
      now: () => clock,
      initialEstimateMs: 6_000,
    });
    const tasks = [1, 2, 3, 4].map(() => controllable<void>());
    const runs = tasks.map((t) => gate.run(t.task));
    // 4 ahead × 3 s per completion (6 s over 2 sequences).
    expect(gate.retryAfterSeconds()).toBe(12);
    clock = 2_000;
    // 2 s of the next completion's 3 s are already spent.
    expect(gate.retryAfterSeconds()).toBe(10);
    const refused = await gate.run(async () => undefined).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: "queue_full", details: { retry_after_s: 10 } });
    for (const t of tasks) t.resolve();
    await Promise.all(runs);
  });

  it("onIdle resolves once nothing runs or waits", async () => {
    const queue = new ModelGate({ parallel: 1, maxWaiting: 1 });
    await queue.onIdle();
    const a = controllable<void>();
    const b = controllable<void>();
    const runs = [queue.run(a.task), queue.run(b.task)];
    let idle = false;
    void queue.onIdle().then(() => {
      idle = true;
    });
    a.resolve();
    await runs[0];
    await tick();
    expect(idle).toBe(false);
    b.resolve();
    await runs[1];
    await tick();
    expect(idle).toBe(true);
  });

  it("rejects invalid sizes", () => {
    expect(() => new ModelGate({ parallel: 0, maxWaiting: 1 })).toThrow(RangeError);
    expect(() => new ModelGate({ parallel: 1, maxWaiting: -1 })).toThrow(RangeError);
  });
});
