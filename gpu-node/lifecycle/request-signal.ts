/**
 * One AbortSignal per request that fires when the client disconnects, its deadline passes or the
 * node's shutdown grace runs out. The reason is always a RequestAbortedError, so the handler can
 * tell the three apart whatever the runtime threw.
 */

export interface RequestSignalInput {
  /** The HTTP request's own signal (fires on client disconnect with @hono/node-server). */
  client: AbortSignal;
  shutdown: AbortSignal;
  /** Milliseconds from now until the deadline. */
  timeoutMs: number;
  /** The deadline to report, ms (the caller's or the node's maximum). */
  deadlineMs: number;
}

export interface RequestSignal {
  signal: AbortSignal;
  /** Stops the timer and listeners; call when the request is done. */
  dispose(): void;
}

export function requestSignal(input: RequestSignalInput): RequestSignal {
  const controller = new AbortController();
  const abort = (reason: RequestAbortedError) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onClient = () => abort(new RequestAbortedError("client"));
  const onShutdown = () => abort(new RequestAbortedError("shutdown"));
  const timer = setTimeout(
    () => abort(new RequestAbortedError("deadline", input.deadlineMs)),
    Math.max(0, input.timeoutMs),
  );
  if (input.client.aborted) onClient();
  else input.client.addEventListener("abort", onClient, { once: true });
  if (input.shutdown.aborted) onShutdown();
  else input.shutdown.addEventListener("abort", onShutdown, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      input.client.removeEventListener("abort", onClient);
      input.shutdown.removeEventListener("abort", onShutdown);
    },
  };
}

/** Why a request's work was stopped before it finished. */
export type AbortKind = "client" | "deadline" | "shutdown";

export class RequestAbortedError extends Error {
  override name = "RequestAbortedError";
  constructor(
    readonly kind: AbortKind,
    /** The deadline that passed, ms (kind "deadline"). */
    readonly deadlineMs?: number,
  ) {
    super(
      kind === "client"
        ? "client disconnected"
        : kind === "deadline"
          ? `deadline of ${deadlineMs} ms passed`
          : "the GPU node is shutting down",
    );
  }
}
