/**
 * Which paths a browser may open without an Authorization header when API keys are set:
 * - the review pages, which check their own session cookie (and send to the login form);
 * - the static scripts of the pages (no data in them);
 * - /docs and /openapi.json with a valid session cookie (a browser sends no bearer header).
 */
import type { Context } from "hono";
import type { Sessions } from "./session.ts";

export const isReviewPath = (path: string) => path === "/review" || path.startsWith("/review/");

const SESSION_PATHS = new Set(["/docs", "/docs/", "/openapi.json"]);

/** "pass": no API key needed here; "login": send the browser to the login form; else undefined. */
export async function browserAccess(
  c: Context,
  sessions: Sessions,
): Promise<"pass" | "login" | undefined> {
  const path = c.req.path;
  if (isReviewPath(path) || path.startsWith("/docs/assets/")) return "pass";
  if (!SESSION_PATHS.has(path)) return undefined;
  if (await sessions.read(c)) return "pass";
  return path.startsWith("/docs") && !c.req.header("authorization") ? "login" : undefined;
}
