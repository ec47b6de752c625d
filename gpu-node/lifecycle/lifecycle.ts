/**
 * Shutdown state shared by main.ts (which drives it) and the app (which refuses new work and
 * hands the abort signal to in-flight work).
 */
export class Lifecycle {
  #shuttingDown = false;
  readonly #abort = new AbortController();

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Fires when the grace period is over and in-flight work must stop. */
  get abortSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /** From now on new requests get 503 shutting_down. */
  beginShutdown(): void {
    this.#shuttingDown = true;
  }

  /** Aborts every request still running or waiting. */
  abortInFlight(): void {
    this.#shuttingDown = true;
    this.#abort.abort();
  }
}
