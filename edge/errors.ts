/**
 * The one error envelope and the one place that maps failures to HTTP statuses.
 *
 * Expected failures are ApiError values with a code; anything else is a bug: logged with its
 * stack, answered with a generic 500 that never carries internals.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorBody, type ErrorCode, ServiceError } from "../gpu-node/contract/index.ts";
import type { AppEnv } from "./deps.ts";

/**
 * The edge's name for the one error class of both services (gpu-node/contract/errors.ts): a
 * code, whose status comes from the one table, a message safe to show, envelope fields, headers.
 */
export const ApiError = ServiceError;
export type ApiError = ServiceError;

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
  // 499 (request_aborted) is no status Hono knows; it is logged, never seen by the client.
  return c.json(
    errorBody(c, err.code, err.message, err.details),
    err.status as ContentfulStatusCode,
  );
}

/** Hono's own exceptions (body limit, malformed JSON, bad auth) mapped onto our codes. */
function fromHttpException(err: HTTPException): ApiError {
  switch (err.status) {
    case 400:
      return /json/i.test(err.message)
        ? new ApiError("invalid_json", "Malformed JSON in request body.", {}, { cause: err })
        : new ApiError("invalid_request", err.message || "Bad request.", {}, { cause: err });
    case 401:
      return new ApiError("unauthorized", "Missing or invalid API key.");
    case 404:
      return new ApiError("not_found", "Not found.");
    case 413:
      return new ApiError("payload_too_large", "Request body too large.");
    case 415:
      return new ApiError("unsupported_media_type", "Content-Type must be application/json.");
    default:
      return new ApiError("internal_error", "Internal server error.", {}, { cause: err });
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
