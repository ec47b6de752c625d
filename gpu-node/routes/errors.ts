/**
 * The GPU node's one error envelope, `{error, code, request_id, ...details}`, and the one place
 * that turns failures into it: ServiceError (status from the contract's table), the framework's
 * own exceptions (malformed JSON, wrong media type), validation failures, unknown routes, and
 * anything else (a bug: 500 with a generic message, the stack only in the log).
 */
import { randomUUID } from "node:crypto";
import type { Hook } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import { ServiceError } from "../contract/errors.ts";
import { ErrorBody, REQUEST_ID_HEADER } from "../contract/index.ts";
import type { GpuNodeEnv } from "./context.ts";

/** The envelope for an error, with its headers (Retry-After, Allow, WWW-Authenticate...). */
export function errorResponse(c: Context<GpuNodeEnv>, error: ServiceError): Response {
  const requestId = c.get("requestId") ?? randomUUID();
  return c.json(errorBody(requestId, error), error.status as ContentfulStatusCode, {
    ...error.headers,
    [REQUEST_ID_HEADER]: requestId,
  });
}

export function errorBody(requestId: string, error: ServiceError): ErrorBody {
  const body: ErrorBody = { error: error.message, code: error.code, request_id: requestId };
  for (const [key, value] of Object.entries(error.details)) if (!(key in body)) body[key] = value;
  return body;
}

/** What a failure means for the caller; unknown errors become a generic internal_error. */
export function toServiceError(error: unknown, log: Logger): ServiceError {
  if (error instanceof ServiceError) return error;
  if (error instanceof HTTPException) {
    if (error.status === 415) {
      return new ServiceError("unsupported_media_type", "Send the body as application/json.");
    }
    if (error.status === 400 && /json/i.test(error.message)) {
      return new ServiceError("invalid_json", "The request body is not valid JSON.");
    }
  }
  log.error({ err: error }, "unhandled error");
  return new ServiceError("internal_error", "Internal error on the GPU node.");
}

export function onError(logger: Logger) {
  return (error: Error, c: Context<GpuNodeEnv>): Response => {
    const log = c.get("log") ?? logger;
    const failure = toServiceError(error, log);
    if (failure.code === "request_aborted") {
      // Nobody is left to read a response; the 499 only shows in the log.
      log.info({ code: failure.code }, failure.message);
      const res = new Response(null, { status: failure.status });
      res.headers.set(REQUEST_ID_HEADER, c.get("requestId"));
      return res;
    }
    if (failure.status >= 500 && failure.code !== "internal_error") {
      log.warn({ code: failure.code, details: failure.details }, failure.message);
    }
    return errorResponse(c, failure);
  };
}

export function notFound(c: Context<GpuNodeEnv>): Response {
  return errorResponse(
    c,
    new ServiceError("not_found", `No route for ${c.req.method} ${c.req.path}.`),
  );
}

export function methodNotAllowed(c: Context<GpuNodeEnv>, methods: string[]): Response {
  const allowed = methods.join(", ");
  return errorResponse(
    c,
    new ServiceError(
      "method_not_allowed",
      `Method ${c.req.method} not allowed on ${c.req.path}.`,
      { allowed },
      { headers: { Allow: allowed } },
    ),
  );
}

/** Validation failures of a route's declared request (body, headers) as 422 invalid_request. */
export const validationHook: Hook<unknown, GpuNodeEnv, string, unknown> = (result) => {
  if (result.success) return;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    code: issue.code,
    message: issue.message,
  }));
  const first = issues[0];
  const where = result.target === "json" ? "body" : result.target;
  throw new ServiceError(
    "invalid_request",
    first
      ? `The request ${where} does not match the schema: ${first.path ? `${first.path}: ` : ""}${first.message}`
      : `The request ${where} does not match the schema.`,
    { issues },
  );
};

/** OpenAPI descriptions of the error answers a route may give (all in the envelope). */
const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Malformed JSON, or a prompt longer than the context",
  401: "Missing or wrong bearer token (GPU_NODE_TOKEN)",
  413: "Body larger than 1 MiB",
  415: "Content-Type is not application/json",
  422: "The body or a header does not match the schema (invalid_request), or a budget too small",
  429: "The model's queue is full: retry after Retry-After seconds",
  503: "Model not loaded (still loading, missing, failed) or the node is shutting down",
  504: "The deadline (X-Deadline-Ms or GPU_NODE_MAX_REQUEST_MS) passed",
};

export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: ERROR_DESCRIPTIONS[status] ?? "Error",
        content: { "application/json": { schema: ErrorBody } },
      },
    ]),
  );
}

/** A client that closed the connection gets nothing (the 499 only shows in the log). */
export const CLIENT_GONE = {
  499: { description: "The client went away; its generation was stopped (logged, no body)" },
} as const;
