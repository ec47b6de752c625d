/**
 * The one error envelope and the one place that maps failures to HTTP statuses.
 *
 * Expected failures are ApiError values with a code; anything else is a bug: logged with its
 * stack, answered with a generic 500 that never carries internals.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ERROR_STATUS, type ErrorBody, type ErrorCode } from "../gpu-node/contract/index.ts";
import type { AppEnv } from "./deps.ts";

export function statusOf(code: ErrorCode): ContentfulStatusCode {
  return ERROR_STATUS[code] as ContentfulStatusCode;
}

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields of the envelope (the seed's, e.g. specified_model_id). */
    readonly details: Record<string, unknown> = {},
    options?: {
      cause?: unknown;
      status?: ContentfulStatusCode;
      headers?: Record<string, string>;
    },
  ) {
    super(message, { cause: options?.cause });
    this.status = options?.status ?? statusOf(code);
    this.headers = options?.headers ?? {};
  }
  readonly status: ContentfulStatusCode;
  readonly headers: Record<string, string>;
}

export function errorBody(
  c: Context<AppEnv>,
  code: ErrorCode,
  message: string,
  details: Record<string, unknown> = {},
): ErrorBody {
  return { error: message, code, request_id: c.get("requestId") ?? "", ...details };
}

export function errorResponse(c: Context<AppEnv>, err: ApiError): Response {
  for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
  return c.json(errorBody(c, err.code, err.message, err.details), err.status);
}

/** Hono's own exceptions (body limit, malformed JSON, bad auth) mapped onto our codes. */
function fromHttpException(err: HTTPException): ApiError {
  switch (err.status) {
    case 400:
      return /json/i.test(err.message)
        ? new ApiError("invalid_json", "Malformed JSON in request body.", {}, { cause: err })
        : new ApiError("invalid_request", err.message || "Bad request.", {}, { status: 400 });
    case 401:
      return new ApiError("unauthorized", "Missing or invalid API key.");
    case 404:
      return new ApiError("not_found", "Not found.");
    case 413:
      return new ApiError("payload_too_large", "Request body too large.");
    case 415:
      return new ApiError("unsupported_media_type", "Content-Type must be application/json.");
    default:
      return new ApiError(
        "internal_error",
        "Internal server error.",
        {},
        { status: err.status as ContentfulStatusCode },
      );
  }
}

export function onError(err: Error, c: Context<AppEnv>): Response {
  const apiError =
    err instanceof ApiError
      ? err
      : err instanceof HTTPException
        ? fromHttpException(err)
        : undefined;
  const logger = c.get("logger");
  if (!apiError) {
    logger?.error({ err, request_id: c.get("requestId") }, "unhandled error");
    return c.json(errorBody(c, "internal_error", "Internal server error."), 500);
  }
  if (apiError.status >= 500) {
    logger?.warn(
      {
        request_id: c.get("requestId"),
        code: apiError.code,
        err: apiError.cause ?? apiError.message,
      },
      apiError.message,
    );
  }
  return errorResponse(c, apiError);
}

export function notFound(c: Context<AppEnv>): Response {
  return c.json(errorBody(c, "not_found", `No route for ${c.req.method} ${c.req.path}.`), 404);
}
