/**
 * The one error envelope and the one place that maps failures to HTTP statuses.
 *
 * Expected failures are ApiError values with a code; anything else is a bug: logged with its
 * stack, answered with a generic 500 that never carries internals.
 */
import { DrizzleQueryError } from "drizzle-orm";
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

/** The /v1 surface (OpenAI-compatible) answers errors in OpenAI's envelope; the rest in ours. */
export function isOpenAiPath(path: string): boolean {
  return path === "/v1" || path.startsWith("/v1/");
}

/** OpenAI's error `type`, from the status the one table gave the code. */
export function openAiErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500)
    return status === 503 || status === 504 ? "service_unavailable" : "server_error";
  return "invalid_request_error";
}

/** OpenAI's envelope: `{"error": {message, type, param, code}}`; our code is its `code`. */
export function openAiErrorBody(
  code: ErrorCode,
  message: string,
  status: number,
  details: Record<string, unknown> = {},
): OpenAiErrorBody {
  const param = typeof details.param === "string" ? details.param : null;
  return { error: { message, type: openAiErrorType(status), param, code } };
}

/** A /v1 validation failure: OpenAI's 400 naming the first bad field as `param` (a[0].b). */
export function invalidParameter(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): ApiError {
  const first = issues[0];
  const param = (first?.path ?? [])
    .map((k, i) => (typeof k === "number" ? `[${k}]` : `${i === 0 ? "" : "."}${String(k)}`))
    .join("");
  const message = first
    ? `Invalid request: ${param ? `${param}: ` : ""}${first.message}`
    : "Invalid request.";
  return new ApiError("invalid_parameter", message, param ? { param } : {});
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export function errorResponse(c: Context<AppEnv>, err: ApiError): Response {
  for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
  // 499 (request_aborted) is no status Hono knows; it is logged, never seen by the client.
  const status = err.status as ContentfulStatusCode;
  if (isOpenAiPath(c.req.path)) {
    return c.json(openAiErrorBody(err.code, err.message, err.status, err.details), status);
  }
  return c.json(errorBody(c, err.code, err.message, err.details), status);
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

/** What a log line may say about an error. */
export interface LoggedError {
  type: string;
  message: string;
  code?: string;
  severity?: string;
  routine?: string;
  table?: string;
  column?: string;
  constraint?: string;
  stack?: string;
  cause?: LoggedError;
}

const DB_FIELDS = [
  ["severity", "severity"],
  ["routine", "routine"],
  ["table", "table_name"],
  ["table", "table"],
  ["column", "column_name"],
  ["column", "column"],
  ["constraint", "constraint_name"],
  ["constraint", "constraint"],
] as const;

/**
 * An error as it may be logged: never the values a query carried. Drizzle's DrizzleQueryError
 * puts the query's parameters (prompts, feedback) in its message and `params`; it is replaced by
 * the driver's error under it. A database error keeps its SQLSTATE code and names (table,
 * column, constraint), and its message loses anything quoted (Postgres quotes input values
 * there, e.g. `invalid input syntax for type uuid: "…"`); `detail` and `where` are dropped.
 */
export function describeError(err: unknown, depth = 0): LoggedError {
  if (!(err instanceof Error)) {
    return { type: typeof err, message: typeof err === "string" ? scrub(err) : "non-error thrown" };
  }
  const e = err as Error & Record<string, unknown>;
  if (err instanceof DrizzleQueryError) {
    const inner =
      e.cause !== undefined && depth < 5 ? describeError(e.cause, depth + 1) : undefined;
    return inner ?? { type: "DrizzleQueryError", message: "query failed" };
  }
  const out: LoggedError = { type: e.name, message: scrub(e.message) };
  const dbLike = typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code);
  if (typeof e.code === "string") out.code = e.code;
  if (dbLike) {
    for (const [name, field] of DB_FIELDS) {
      const v = e[field];
      if (typeof v === "string" && out[name] === undefined) out[name] = v;
    }
  } else if (e.stack) {
    out.stack = e.stack.split("\n").slice(1).join("\n");
  }
  if (e.cause !== undefined && depth < 5) out.cause = describeError(e.cause, depth + 1);
  return out;
}

const scrub = (message: string) => message.replace(/"[^"]*"/g, '"…"').slice(0, 500);

export function onError(err: Error, c: Context<AppEnv>): Response {
  const apiError =
    err instanceof ApiError
      ? err
      : err instanceof HTTPException
        ? fromHttpException(err)
        : undefined;
  const logger = c.get("logger");
  if (!apiError) {
    logger?.error({ err: describeError(err), request_id: c.get("requestId") }, "unhandled error");
    return errorResponse(c, new ApiError("internal_error", "Internal server error."));
  }
  if (apiError.status >= 500) {
    logger?.warn(
      {
        request_id: c.get("requestId"),
        code: apiError.code,
        err: apiError.cause !== undefined ? describeError(apiError.cause) : apiError.message,
      },
      apiError.message,
    );
  }
  return errorResponse(c, apiError);
}

export function notFound(c: Context<AppEnv>): Response {
  return errorResponse(c, new ApiError("not_found", `No route for ${c.req.method} ${c.req.path}.`));
}
