/**
 * What the /review route modules share: the request context's type, the page helpers the
 * routes render with, and reading a posted form.
 */
import type { Context } from "hono";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { AppEnv } from "../deps.ts";
import type { FormValues } from "./form-model.ts";
import type { Session } from "./session.ts";

export type ReviewEnv = {
  Variables: AppEnv["Variables"] & { session: Session; csrf: string };
};
export type RC = Context<ReviewEnv>;

/** The page helpers createReviewRoutes makes and lends to the route modules. */
export interface PageKit {
  render: (c: RC, page: JSX.Element, status?: number) => Promise<Response>;
  problem: (c: RC, status: number, title: string, message: string) => Promise<Response>;
  showLogout: boolean;
}

export async function formValues(c: RC): Promise<FormValues> {
  const body = await c.req.parseBody();
  const out: FormValues = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
  return out;
}
