/**
 * The one gate in front of each model: admits up to `parallel` generations at once (the runtime
 * batches the admitted ones itself: Hermes' context sequences, Phi-3's batched steps), keeps a
 * bounded FIFO line for the rest, and refuses beyond it at once with `429 queue_full` and a
 * Retry-After computed from the model's measured throughput.
 *
 * Pure (no I/O, clock injected). A caller's AbortSignal removes a waiting request from the line,
 * or, for an admitted one, rejects the caller's promise at once and is handed to the work so the
 * runtime stops its sequence. An admitted request's place is given back only when the work itself
 * settles: the runtime owns a fixed number of sequences, and admitting another generation before
 * the aborted one has really stopped would ask it for one more than it has.
 */
import { ServiceError } from "../contract/errors.ts";

export interface GateOptions {
  /** Generations admitted at once (>= 1): the runtime's `parallel`. */
  parallel: number;
  /** Requests that may wait for admission (>= 0). */
  maxWaiting: number;
  /** Milliseconds, monotonic. */
  now?: () => number;
  /** Assumed duration of one generation until some have finished (default 5 s). */
  initialEstimateMs?: number;
}

export interface GateStats {
  running: number;
  waiting: number;
  /** Running + waiting allowed. */
  capacity: number;
}

export interface Admitted<T> {
  value: T;
  /** Time spent waiting for admission. */
  queueMs: number;
}

type Work<T> = (signal: AbortSignal) => Promise<T>;

/** Weight of the newest measurement in the moving average. */
const SMOOTHING = 0.3;
const NEVER_ABORTED = new AbortController().signal;

export class ModelGate {
  readonly parallel: number;
  readonly maxWaiting: number;
  readonly #now: () => number;
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  /** Busy milliseconds (time with at least one generation running) per finished generation:
   * the inverse of the measured throughput. */
  #intervalMs: number;
  /** Busy time since the last successful completion, up to #busySince. */
  #busyMs = 0;
  /** When the current busy stretch was last accounted; undefined while idle. */
  #busySince: number | undefined;
  #idleWaiters: (() => void)[] = [];

  constructor(options: GateOptions) {
    if (!Number.isInteger(options.parallel) || options.parallel < 1) {
      throw new RangeError(`parallel must be an integer >= 1, got ${options.parallel}`);
    }
    if (!Number.isInteger(options.maxWaiting) || options.maxWaiting < 0) {
      throw new RangeError(`maxWaiting must be an integer >= 0, got ${options.maxWaiting}`);
    }
    this.parallel = options.parallel;
    this.maxWaiting = options.maxWaiting;
    this.#now = options.now ?? (() => performance.now());
    this.#intervalMs = (options.initialEstimateMs ?? 5_000) / options.parallel;
  }

  stats(): GateStats {
    return {
      running: this.#running,
      waiting: this.#waiting.length,
      capacity: this.parallel + this.maxWaiting,
    };
  }

  /** Measured generations per second while busy (smoothed). */
  get throughputPerS(): number {
    return 1000 / this.#intervalMs;
  }

  /**
   * Seconds until the work ahead of a new request would be done: every running and waiting
   * generation, at the measured throughput, less the busy time already spent since the last
   * one finished. At least 1.
   */
  retryAfterSeconds(): number {
    const ahead = this.#running + this.#waiting.length;
    const spent = Math.min(this.#intervalMs, this.#currentBusyMs());
    const aheadMs = Math.max(0, ahead * this.#intervalMs - spent);
    return Math.max(1, Math.ceil(aheadMs / 1000));
  }

  /**
   * Runs `work` once admitted. Rejects with ServiceError `queue_full` (Retry-After in its
   * headers) when the line is full, and with `signal.reason` as soon as the signal aborts
   * (waiting or running).
   */
  run<T>(work: Work<T>, signal: AbortSignal = NEVER_ABORTED): Promise<Admitted<T>> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const enqueuedAt = this.#now();
    const canStart = this.#running < this.parallel && this.#waiting.length === 0;
    if (!canStart && this.#waiting.length >= this.maxWaiting) {
      const retryAfterS = this.retryAfterSeconds();
      return Promise.reject(
        new ServiceError(
          "queue_full",
          "The model's queue is full; retry later.",
          { retry_after_s: retryAfterS, queue: this.stats() },
          { headers: { "Retry-After": String(retryAfterS) } },
        ),
      );
    }

    return new Promise<Admitted<T>>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        fn();
      };
      let waiter: (() => void) | undefined;
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
        this.#admit();
        let running: Promise<T>;
        try {
          running = work(signal);
        } catch (error) {
          running = Promise.reject(error);
        }
        running.then(
          (value) => {
            this.#finish(true);
            settle(() => resolve({ value, queueMs }));
          },
          (error: unknown) => {
            this.#finish(false);
            settle(() => reject(error));
          },
        );
      };

      if (canStart) start();
      else {
        waiter = start;
        this.#waiting.push(start);
      }
    });
  }

  /** Resolves once nothing runs or waits (graceful shutdown, dispose). */
  onIdle(): Promise<void> {
    if (this.#running === 0 && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #currentBusyMs(): number {
    return this.#busyMs + (this.#busySince === undefined ? 0 : this.#now() - this.#busySince);
  }

  #admit() {
    if (this.#running === 0) this.#busySince = this.#now();
    this.#running++;
  }

  #finish(succeeded: boolean) {
    const now = this.#now();
    if (this.#busySince !== undefined) this.#busyMs += now - this.#busySince;
    this.#running--;
    this.#busySince = this.#running > 0 ? now : undefined;
    // Failed and aborted generations say little about throughput; their busy time counts
    // towards the next success (a conservative estimate).
    if (succeeded) {
      this.#intervalMs = SMOOTHING * this.#busyMs + (1 - SMOOTHING) * this.#intervalMs;
      this.#busyMs = 0;
    }
    while (this.#running < this.parallel && this.#waiting.length > 0) this.#waiting.shift()?.();
    this.#notifyIdle();
  }

  #notifyIdle() {
    if (this.#running > 0 || this.#waiting.length > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
