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
import { type Context, Hono } from "hono";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import type { FeedbackRow } from "../../db/schema/feedback.ts";
import type { ProposalEndpoint } from "../../db/schema/proposals.ts";
import type { AppEnv, Clock } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { submitFeedback } from "../services/feedback.ts";
import { findQueueItem } from "../services/find-queue-item.ts";
import { getProposal } from "../services/get-proposal.ts";
import {
  decodeCursor,
  encodeCursor,
  type ListFilters,
  listProposals,
} from "../services/list-proposals.ts";
import { CLIENT_JS } from "./client-bundle.gen.ts";
import {
  type FormValues,
  parseProposalForm,
  parseReviewFields,
  proposalToForm,
  sameProposal,
} from "./form-model.ts";
import { LoginPage, ProblemPage } from "./pages/layout.tsx";
import { ListPage, type ListQuery, Rows } from "./pages/list.tsx";
import type { FormErrors } from "./pages/proposal.tsx";
import { ProposalPage } from "./pages/proposal.tsx";
import { QueuePage } from "./pages/queue.tsx";
import { clientOf, createLoginLimiter, type Session, type Sessions } from "./session.ts";
import { REVIEW_CSS } from "./styles.ts";

type ReviewEnv = {
  Variables: AppEnv["Variables"] & { session: Session; csrf: string };
};
type RC = Context<ReviewEnv>;

const PAGE_SIZE = 25;

/** Wrong keys per client per minute before the login form says "wait". */
export const LOGIN_ATTEMPTS_PER_MINUTE = 5;

const ListQuerySchema = z.object({
  ticker: z.string().max(16).optional(),
  endpoint: z.enum(["generate", "generate_phi3", "propose_trade_adjustments", ""]).optional(),
  from: z.union([z.iso.date(), z.literal("")]).optional(),
  to: z.union([z.iso.date(), z.literal("")]).optional(),
  feedback: z.enum(["with", "without", ""]).optional(),
  before: z.string().optional(),
  after: z.string().optional(),
});

function filtersOf(q: ListQuery): ListFilters {
  return {
    ticker: q.ticker?.trim() || undefined,
    endpoint: (q.endpoint || undefined) as ProposalEndpoint | undefined,
    from: q.from ? new Date(`${q.from}T00:00:00Z`) : undefined,
    to: q.to ? new Date(new Date(`${q.to}T00:00:00Z`).getTime() + 86_400_000) : undefined,
    feedback: (q.feedback || undefined) as ListFilters["feedback"],
  };
}

/** A same-site path to go back to after logging in; anything else becomes /review. */
function safeNext(next: string | undefined): string {
  return next && /^\/(?!\/)[^\s\\]*$/.test(next) && !next.startsWith("/review/login")
    ? next
    : "/review";
}

async function formValues(c: RC): Promise<FormValues> {
  const body = await c.req.parseBody();
  const out: FormValues = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
  return out;
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

  review.get("/", async (c) => {
    const parsed = ListQuerySchema.safeParse(c.req.query());
    if (!parsed.success) {
      return problem(
        c,
        new ApiError("invalid_request", "").status,
        "Invalid filter",
        `The filters are not valid: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}.`,
      );
    }
    const q = parsed.data;
    try {
      const page = await listProposals({
        ctx: c.var.ctx,
        input: {
          ...filtersOf(q),
          before: decodeCursor(q.before),
          after: q.before ? undefined : decodeCursor(q.after),
          limit: PAGE_SIZE,
        },
      });
      const query: ListQuery = {
        ticker: q.ticker,
        endpoint: q.endpoint,
        from: q.from,
        to: q.to,
        feedback: q.feedback,
      };
      return render(
        c,
        <ListPage
          query={query}
          page={page}
          firstPage={!q.before && !q.after}
          csrf={c.get("csrf")}
          showLogout={showLogout}
        />,
      );
    } catch (err) {
      if (err instanceof ApiError) return problem(c, err.status, "Cannot list", err.message);
      throw err;
    }
  });

  // Polling: rows newer than `after`, as HTML rows for the list's table.
  review.get("/rows", async (c) => {
    const parsed = ListQuerySchema.safeParse(c.req.query());
    if (!parsed.success) throw new ApiError("invalid_request", "Invalid filters.");
    const after = decodeCursor(parsed.data.after);
    const page = after
      ? await listProposals({
          ctx: c.var.ctx,
          input: { ...filtersOf(parsed.data), after, limit: 50 },
        })
      : { rows: [] };
    const top = page.rows[0];
    c.header("cache-control", "no-store");
    return c.json({
      count: page.rows.length,
      cursor: top
        ? encodeCursor({ at: top.createdAt, id: top.transactionId })
        : (parsed.data.after ?? ""),
      html: page.rows.length > 0 ? String(await (<Rows rows={page.rows} fresh />).toString()) : "",
    });
  });

  review.get("/queue", async (c) => {
    try {
      const after = decodeCursor(c.req.query("after"));
      const before = decodeCursor(c.req.query("before"));
      let item = await findQueueItem({ ctx: c.var.ctx, input: { after, before } });
      // Past either end: back to the first one.
      if (!item.row && (after || before)) {
        item = await findQueueItem({ ctx: c.var.ctx, input: {} });
      }
      const detail = item.row
        ? await getProposal({ ctx: c.var.ctx, input: { transactionId: item.row.transactionId } })
        : undefined;
      const storedId = c.req.query("stored");
      const storedTx = c.req.query("stored_tx");
      let stored: FeedbackRow | undefined;
      if (storedId && storedTx) {
        const storedDetail = await getProposal({
          ctx: c.var.ctx,
          input: { transactionId: storedTx },
        }).catch(() => undefined);
        stored = storedDetail?.feedback.find((f) => String(f.id) === storedId);
      }
      return render(
        c,
        <QueuePage
          detail={detail}
          remaining={item.remaining}
          hasPrevious={item.hasPrevious}
          hasNext={item.hasNext}
          stored={stored}
          form={{ values: detail ? proposalToForm(detail.row.phi3Proposal) : {}, errors: {} }}
          csrf={c.get("csrf")}
          showLogout={showLogout}
        />,
      );
    } catch (err) {
      if (err instanceof ApiError)
        return problem(c, err.status, "Cannot show the queue", err.message);
      throw err;
    }
  });

  review.get("/:id", async (c) => {
    try {
      const detail = await getProposal({
        ctx: c.var.ctx,
        input: { transactionId: c.req.param("id") },
      });
      return render(
        c,
        <ProposalPage
          detail={detail}
          stored={c.req.query("stored")}
          form={{ values: proposalToForm(detail.row.phi3Proposal), errors: {} }}
          csrf={c.get("csrf")}
          showLogout={showLogout}
        />,
      );
    } catch (err) {
      if (err instanceof ApiError) {
        return problem(
          c,
          err.status,
          err.code === "not_found" ? "No such proposal" : "Cannot show the proposal",
          err.message,
        );
      }
      throw err;
    }
  });

  review.post("/:id/feedback", async (c) => {
    const transactionId = c.req.param("id");
    const values = await formValues(c);
    const returnTo = values.return === "queue" ? "queue" : "proposal";
    let detail: Awaited<ReturnType<typeof getProposal>>;
    try {
      detail = await getProposal({ ctx: c.var.ctx, input: { transactionId } });
    } catch (err) {
      if (err instanceof ApiError) return problem(c, err.status, "Nothing stored", err.message);
      throw err;
    }
    const proposal = parseProposalForm(values);
    const extra = parseReviewFields(values);
    const errors: FormErrors = {
      ...(proposal.ok ? {} : proposal.errors),
      ...(extra.ok ? {} : extra.errors),
    };
    let message: string | undefined;
    let feedback:
      | { type: "correction" | "rating" | "qualitative_comment"; content: Record<string, unknown> }
      | undefined;
    if (proposal.ok && extra.ok) {
      const { rating, comment } = extra.value;
      const content = {
        ...(rating !== undefined ? { rating } : {}),
        ...(comment ? { comment } : {}),
      };
      if (!sameProposal(proposal.proposal, detail.row.phi3Proposal)) {
        feedback = { type: "correction", content };
      } else if (rating !== undefined) {
        feedback = { type: "rating", content };
      } else if (comment) {
        feedback = { type: "qualitative_comment", content };
      } else {
        message = "Nothing to store: change a field, choose a rating or write a comment.";
      }
    } else {
      message = "Nothing was stored: correct the fields marked in red.";
    }
    if (!feedback || !proposal.ok) {
      return render(
        c,
        <ProposalPage
          detail={detail}
          form={{ values, errors, message }}
          csrf={c.get("csrf")}
          showLogout={showLogout}
        />,
        new ApiError("invalid_request", "").status,
      );
    }
    let row: Awaited<ReturnType<typeof submitFeedback>>;
    try {
      row = await submitFeedback({
        ctx: c.var.ctx,
        input: {
          transactionId,
          feedbackType: feedback.type,
          feedbackContent: feedback.content,
          correctedProposal: feedback.type === "correction" ? proposal.proposal : undefined,
        },
      });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return render(
        c,
        <ProposalPage
          detail={detail}
          form={{ values, errors: {}, message: `Nothing was stored: ${err.message}` }}
          csrf={c.get("csrf")}
          showLogout={showLogout}
        />,
        err.status,
      );
    }
    if (returnTo === "queue") {
      const at = encodeURIComponent(
        encodeCursor({ at: detail.row.createdAt, id: detail.row.transactionId }),
      );
      return c.redirect(
        `/review/queue?after=${at}&stored=${row.id}&stored_tx=${row.transactionId}`,
        303,
      );
    }
    return c.redirect(`/review/${row.transactionId}?stored=${row.id}#feedback-${row.id}`, 303);
  });

  return review;
}
