/**
 * A bounded work queue per model: at most `concurrency` tasks run, at most `maxWaiting` wait in
 * FIFO order, and anything beyond is refused at once with an estimate of when to retry.
 *
 * Pure (no I/O, clock injected). A caller's AbortSignal removes a waiting task from the queue, or,
 * for a running task, rejects the caller's promise at once and is handed to the task so it can stop.
 * A running task's slot is released only when the task itself settles: the model runtime owns a
 * fixed number of sequences, and starting another generation before the aborted one has really
 * stopped would ask it for one more than it has.
 */

export class QueueFullError extends Error {
  constructor(
    /** Seconds after which a retry is likely to be accepted. */
    readonly retryAfterS: number,
  ) {
    super(`queue full, retry in about ${retryAfterS} s`);
    this.name = "QueueFullError";
  }
}

export interface WorkQueueOptions {
  /** Tasks that may run at once (>= 1). */
  concurrency: number;
  /** Tasks that may wait for a slot (>= 0). */
  maxWaiting: number;
  /** Milliseconds, monotonic. */
  now?: () => number;
  /** Assumed duration of a task until one has finished. */
  initialEstimateMs?: number;
}

export interface QueueStats {
  running: number;
  waiting: number;
  /** Running + waiting allowed. */
  capacity: number;
}

export interface QueuedResult<T> {
  value: T;
  /** Time spent waiting for a slot. */
  queueMs: number;
}

type Task<T> = (signal: AbortSignal) => Promise<T>;

interface Waiter {
  start: () => void;
}

/** Weight of the newest duration in the moving average used for Retry-After. */
const SMOOTHING = 0.3;
const NEVER_ABORTED = new AbortController().signal;

export class WorkQueue {
  readonly concurrency: number;
  readonly maxWaiting: number;
  readonly #now: () => number;
  readonly #waiting: Waiter[] = [];
  /** Start times of the running tasks. */
  readonly #running = new Set<{ startedAt: number }>();
  #estimateMs: number;
  #idleWaiters: (() => void)[] = [];

  constructor(options: WorkQueueOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`concurrency must be an integer >= 1, got ${options.concurrency}`);
    }
    if (!Number.isInteger(options.maxWaiting) || options.maxWaiting < 0) {
      throw new RangeError(`maxWaiting must be an integer >= 0, got ${options.maxWaiting}`);
    }
    this.concurrency = options.concurrency;
    this.maxWaiting = options.maxWaiting;
    this.#now = options.now ?? (() => performance.now());
    this.#estimateMs = options.initialEstimateMs ?? 5_000;
  }

  stats(): QueueStats {
    return {
      running: this.#running.size,
      waiting: this.#waiting.length,
      capacity: this.concurrency + this.maxWaiting,
    };
  }

  /** Smoothed duration of finished tasks, ms. */
  get estimateMs(): number {
    return this.#estimateMs;
  }

  /**
   * Seconds until the work ahead of a new task would be done: what is left of the running tasks
   * plus the waiting ones, spread over the slots. At least 1.
   */
  retryAfterSeconds(): number {
    const now = this.#now();
    let aheadMs = this.#waiting.length * this.#estimateMs;
    for (const task of this.#running) {
      aheadMs += Math.max(0, this.#estimateMs - (now - task.startedAt));
    }
    return Math.max(1, Math.ceil(aheadMs / this.concurrency / 1000));
  }

  /**
   * Runs `task` when a slot is free. Rejects with QueueFullError when the waiting line is full,
   * and with `signal.reason` as soon as the signal aborts (waiting or running).
   */
  run<T>(task: Task<T>, signal: AbortSignal = NEVER_ABORTED): Promise<QueuedResult<T>> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const enqueuedAt = this.#now();
    const canStart = this.#running.size < this.concurrency && this.#waiting.length === 0;
    if (!canStart && this.#waiting.length >= this.maxWaiting) {
      return Promise.reject(new QueueFullError(this.retryAfterSeconds()));
    }

    return new Promise<QueuedResult<T>>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        fn();
      };
      let waiter: Waiter | undefined;
      const onAbort = () => {
        if (waiter) {
          const index = this.#waiting.indexOf(waiter);
          if (index >= 0) this.#waiting.splice(index, 1);
          this.#notifyIdle();
        }
        settle(() => reject(signal.reason));
      };
      signal.addEventListener("abort", onAbort, { once: true });

      const start = () => {
        waiter = undefined;
        const queueMs = this.#now() - enqueuedAt;
        const slot = { startedAt: this.#now() };
        this.#running.add(slot);
        let work: Promise<T>;
        try {
          work = task(signal);
        } catch (error) {
          work = Promise.reject(error);
        }
        work.then(
          (value) => {
            this.#finish(slot, true);
            settle(() => resolve({ value, queueMs }));
          },
          (error: unknown) => {
            this.#finish(slot, false);
            settle(() => reject(error));
          },
        );
      };

      if (canStart) {
        start();
      } else {
        waiter = { start };
        this.#waiting.push(waiter);
      }
    });
  }

  /** Resolves once nothing runs or waits (used by graceful shutdown). */
  onIdle(): Promise<void> {
    if (this.#running.size === 0 && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #finish(slot: { startedAt: number }, succeeded: boolean) {
    this.#running.delete(slot);
    // Failed and aborted tasks say little about how long a generation takes.
    if (succeeded) {
      const took = this.#now() - slot.startedAt;
      this.#estimateMs = SMOOTHING * took + (1 - SMOOTHING) * this.#estimateMs;
    }
    while (this.#running.size < this.concurrency && this.#waiting.length > 0) {
      this.#waiting.shift()?.start();
    }
    this.#notifyIdle();
  }

  #notifyIdle() {
    if (this.#running.size > 0 || this.#waiting.length > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
