/**
 * The error codes of both services, the one code → HTTP status table, and the one error class.
 *
 * zod only (Workers-safe). The edge's public envelope and the GPU node's internal one both carry
 * these codes; a status is never written at a throw site, it is looked up here.
 */
import { z } from "zod";

export const ErrorCode = z.enum([
  "invalid_request",
  "invalid_json",
  "invalid_model_id",
  /** The edge's /v1 (OpenAI) surface: a field with a bad value (OpenAI answers these with 400). */
  "invalid_parameter",
  /** The edge's /v1 surface: a field OpenAI defines that we refuse because ignoring it would
   * change the answer (tools, logprobs, n > 1, ...), or a field OpenAI does not define. */
  "unsupported_parameter",
  /** The edge's /v1 surface: `model` names no model we serve. */
  "model_not_found",
  "unauthorized",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "payload_too_large",
  "unsupported_media_type",
  "prompt_too_long",
  "budget_too_small",
  /** json_schema is not a valid JSON Schema (2020-12). */
  "invalid_schema",
  /** json_schema uses a keyword outside the structured-output subset (the body names it). */
  "unsupported_schema",
  "queue_full",
  "too_many_requests",
  "model_not_loaded",
  "gpu_node_unavailable",
  "gpu_node_timeout",
  "gpu_node_error",
  "database_unavailable",
  "request_aborted",
  "shutting_down",
  "misconfigured",
  "internal_error",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** The one table. 499 is nginx's "client closed request": logged, never seen by the client. */
export const ERROR_STATUS = {
  invalid_request: 422,
  invalid_json: 400,
  invalid_model_id: 400,
  invalid_parameter: 400,
  unsupported_parameter: 400,
  model_not_found: 404,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  prompt_too_long: 400,
  budget_too_small: 422,
  /** json_schema is not a valid JSON Schema (2020-12). */
  invalid_schema: 400,
  /** json_schema uses a keyword outside the supported subset (the body names it). */
  unsupported_schema: 400,
  queue_full: 429,
  too_many_requests: 429,
  model_not_loaded: 503,
  gpu_node_unavailable: 503,
  gpu_node_timeout: 504,
  gpu_node_error: 503,
  database_unavailable: 503,
  request_aborted: 499,
  shutting_down: 503,
  misconfigured: 503,
  internal_error: 500,
} as const satisfies Record<ErrorCode, number>;
export type ErrorStatus = (typeof ERROR_STATUS)[ErrorCode];

export function statusOf(code: ErrorCode): ErrorStatus {
  return ERROR_STATUS[code];
}

/**
 * An expected failure: a code (its status comes from the table), a message safe to show the
 * caller, extra envelope fields, and response headers (e.g. Retry-After). Anything else thrown is
 * a bug: logged with its stack, answered with a generic 500.
 */
export class ServiceError extends Error {
  override name = "ServiceError";
  readonly status: ErrorStatus;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = statusOf(code);
    this.details = details;
    this.headers = options.headers ?? {};
  }
}
