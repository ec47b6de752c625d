/**
 * Checks every JSON request body once, before any schema (or anything else) walks it:
 * nesting depth (JSON_MAX_DEPTH), ill-formed strings (a lone UTF-16 surrogate, in a value or a
 * key: Postgres refuses them as JSON, and they are no text), and `__proto__` keys (a JavaScript
 * object cannot keep one as data: schemas would drop it silently). Each is a 422 naming the field.
 *
 * JSON.parse itself is not recursive in V8, so a deeply nested body is parsed safely; the walk
 * below uses an explicit stack and stops at the depth limit.
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../deps.ts";
import { ApiError } from "../errors.ts";

export interface JsonProblem {
  /** Dotted path of the offending field ("" for the body itself). */
  path: string;
  message: string;
}

const join = (path: string, key: string | number) => (path === "" ? String(key) : `${path}.${key}`);

/** The first problem in a parsed JSON value, or undefined. Pure, iterative. */
export function findJsonProblem(value: unknown, maxDepth: number): JsonProblem | undefined {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: "", depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { v, path, depth } = item;
    if (typeof v === "string") {
      if (!v.isWellFormed()) {
        return { path, message: "must be well-formed text (it contains a lone UTF-16 surrogate)" };
      }
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (depth > maxDepth) {
      return { path, message: `JSON nested deeper than ${maxDepth} levels` };
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--)
        stack.push({ v: v[i], path: join(path, i), depth: depth + 1 });
      continue;
    }
    const obj = v as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      if (!key.isWellFormed()) {
        return {
          path: join(path, key.toWellFormed()),
          message: "key must be well-formed text (it contains a lone UTF-16 surrogate)",
        };
      }
      if (key === "__proto__") {
        return { path: join(path, key), message: 'the key "__proto__" is not accepted' };
      }
      stack.push({ v: obj[key], path: join(path, key), depth: depth + 1 });
    }
  }
  return undefined;
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/**
 * Parses a JSON body once, checks it, and hands the parsed value to the route's validator
 * (which reads c.req.json()). Malformed JSON is left to the validator (400 invalid_json).
 */
export function jsonBodyGuard(maxDepth: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.method !== "POST" || !JSON_TYPE.test(c.req.header("content-type") ?? "")) {
      return next();
    }
    const text = await c.req.text();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return next();
    }
    const problem = findJsonProblem(value, maxDepth);
    if (problem) {
      throw new ApiError(
        "invalid_request",
        `Invalid request: ${problem.path ? `${problem.path}: ` : ""}${problem.message}`,
        { issues: [problem] },
      );
    }
    // The validators call c.req.json(), which would parse the text again: give them this value.
    // (HonoRequest.json is a method on its prototype; an own property shadows it.)
    (c.req as unknown as { json: () => Promise<unknown> }).json = () => Promise.resolve(value);
    return next();
  };
}

/**
 * Hono's bodyLimit, without its cost on Node: it reads `c.req.raw.body` first, which makes
 * @hono/node-server build a full web Request and stream for every request (a measurable share of
 * the edge's CPU). With a Content-Length (and no Transfer-Encoding) the length decides alone;
 * otherwise Hono's middleware counts the streamed body.
 */
export function bodySizeLimit(maxSize: number, onError: () => never): MiddlewareHandler<AppEnv> {
  const streamed = bodyLimit({ maxSize, onError });
  return async (c, next) => {
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined) {
      if (Number.parseInt(length, 10) > maxSize) onError();
      return next();
    }
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    return streamed(c, next);
  };
}
