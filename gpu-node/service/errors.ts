/**
 * Failures the HTTP layer raises itself (runtimes raise GpuNodeError from runtime.ts). Both map to
 * the one error envelope in app.ts's onError.
 */
import type { ErrorCode } from "../contract/index.ts";

export type HttpErrorStatus = 400 | 401 | 404 | 405 | 413 | 415 | 429 | 499 | 503 | 504;

export class HttpError extends Error {
  constructor(
    readonly status: HttpErrorStatus,
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** Why a request's work was stopped before it finished. */
export type AbortKind = "client" | "deadline" | "shutdown";

export class RequestAbortedError extends Error {
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
    this.name = "RequestAbortedError";
  }
}
