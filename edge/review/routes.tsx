/** @jsxImportSource hono/jsx */
/**
 * /review: the traders' pages, server-rendered (Hono JSX) on Node and Workers alike, with a small
 * bundled script (client-bundle.gen.ts) and stylesheet served from here. Reads go through the
 * read services, writes through the feedback service (which checks the schema again).
 *
 * Access: every page needs a session cookie (session.ts). With API_KEYS it comes from the login
 * form; without (loopback only) it is issued on the first visit. Every form post carries a CSRF
 * token derived from the session.
 */
import { Hono } from "hono";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Clock } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { registerBrowseRoutes } from "./browse-routes.tsx";
import { CLIENT_JS } from "./client-bundle.gen.ts";
import { registerFeedbackRoute } from "./feedback-route.tsx";
import { LoginPage, ProblemPage } from "./pages/layout.tsx";
import { formValues, type RC, type ReviewEnv } from "./route-kit.ts";
import { clientOf, createLoginLimiter, type Sessions } from "./session.ts";
import { REVIEW_CSS } from "./styles.ts";

/** Wrong keys per client per minute before the login form says "wait". */
export const LOGIN_ATTEMPTS_PER_MINUTE = 5;

/** A same-site path to go back to after logging in; anything else becomes /review. */
function safeNext(next: string | undefined): string {
  return next && /^\/(?!\/)[^\s\\]*$/.test(next) && !next.startsWith("/review/login")
    ? next
    : "/review";
}

export function createReviewRoutes(options: {
  sessions: Sessions;
  clock: Clock;
  /** "workers" trusts CF-Connecting-IP for the login limiter. */
  runtime: string;
}) {
  const { sessions, clock, runtime } = options;
  const limiter = createLoginLimiter({
    max: LOGIN_ATTEMPTS_PER_MINUTE,
    windowMs: 60_000,
    clock,
  });
  const review = new Hono<ReviewEnv>();

  // A status from the one table (ServiceError.status); 499 never reaches a page.
  const render = async (c: RC, page: JSX.Element, status: number = 200) => {
    c.header("cache-control", "no-store");
    c.header("x-frame-options", "DENY");
    c.header("referrer-policy", "same-origin");
    return c.html(`<!doctype html>${await page.toString()}`, status as ContentfulStatusCode);
  };
  const problem = (c: RC, status: number, title: string, message: string) =>
    render(
      c,
      <ProblemPage
        title={title}
        message={message}
        csrf={c.get("csrf")}
        showLogout={!sessions.open && c.get("session") !== undefined}
      />,
      status,
    );

  review.get("/assets/client.js", (c) => {
    c.header("content-type", "text/javascript; charset=utf-8");
    c.header("cache-control", "no-cache");
    return c.body(CLIENT_JS);
  });
  review.get("/assets/review.css", (c) => {
    c.header("content-type", "text/css; charset=utf-8");
    c.header("cache-control", "no-cache");
    return c.body(REVIEW_CSS);
  });

  review.get("/login", async (c) => {
    if (sessions.open) return c.redirect("/review", 303);
    if (await sessions.read(c)) return c.redirect(safeNext(c.req.query("next")), 303);
    return render(c, <LoginPage next={safeNext(c.req.query("next"))} />);
  });

  review.post("/login", async (c) => {
    if (sessions.open) return c.redirect("/review", 303);
    const values = await formValues(c);
    const next = safeNext(values.next);
    const client = clientOf(c, runtime);
    const wait = limiter.retryAfterS(client);
    if (wait > 0) {
      c.header("retry-after", String(wait));
      return render(
        c,
        <LoginPage
          next={next}
          message={`Too many wrong keys. Wait ${wait} s before trying again.`}
        />,
        new ApiError("too_many_requests", "").status,
      );
    }
    const tag = values.key ? await sessions.verifyKey(values.key.trim()) : undefined;
    if (!tag) {
      limiter.fail(client);
      return render(
        c,
        <LoginPage
          next={next}
          message={values.key ? "That key is not valid. Check it and try again." : "Enter a key."}
        />,
        new ApiError("unauthorized", "").status,
      );
    }
    await sessions.issue(c, tag);
    c.get("logger").info({ request_id: c.get("requestId") }, "review login");
    return c.redirect(next, 303);
  });

  // Every other page needs a session; form posts need its CSRF token as well.
  review.use("*", async (c, next) => {
    let session = await sessions.read(c);
    if (!session && sessions.open) session = await sessions.issue(c, "open");
    if (!session) {
      if (c.req.method === "GET") {
        const url = new URL(c.req.url);
        return c.redirect(
          `/review/login?next=${encodeURIComponent(url.pathname + url.search)}`,
          303,
        );
      }
      return render(
        c,
        <LoginPage next="/review" message="Your session has expired. Log in again." />,
        new ApiError("unauthorized", "").status,
      );
    }
    c.set("session", session);
    c.set("csrf", await sessions.csrfToken(session));
    if (c.req.method === "POST") {
      const values = await formValues(c);
      if (!(await sessions.checkCsrf(session, values._csrf))) {
        return problem(
          c,
          new ApiError("forbidden", "").status,
          "Form refused",
          "This form did not come from this page, or it is out of date (CSRF check failed). " +
            "Nothing was stored. Reload the page and try again.",
        );
      }
    }
    await next();
  });

  review.post("/logout", async (c) => {
    sessions.clear(c);
    return c.redirect(sessions.open ? "/review" : "/review/login", 303);
  });

  const showLogout = !sessions.open;
  registerBrowseRoutes(review, { render, problem, showLogout });
  registerFeedbackRoute(review, { render, problem, showLogout });

  return review;
}
