/** @jsxImportSource hono/jsx */
/**
 * /review's reading pages: the filtered list, its polled rows, the review queue and one
 * proposal.
 */
import type { Hono } from "hono";
import { z } from "zod";
import type { FeedbackRow } from "../../db/schema/feedback.ts";
import type { ProposalEndpoint } from "../../db/schema/proposals.ts";
import { ApiError } from "../errors.ts";
import { findQueueItem } from "../services/find-queue-item.ts";
import { getProposal } from "../services/get-proposal.ts";
import {
  decodeCursor,
  encodeCursor,
  type ListFilters,
  listProposals,
} from "../services/list-proposals.ts";
import { proposalToForm } from "./form-model.ts";
import { ListPage, type ListQuery, Rows } from "./pages/list.tsx";
import { ProposalPage } from "./pages/proposal.tsx";
import { QueuePage } from "./pages/queue.tsx";
import type { PageKit, ReviewEnv } from "./route-kit.ts";

const PAGE_SIZE = 25;

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

export function registerBrowseRoutes(review: Hono<ReviewEnv>, kit: PageKit): void {
  const { render, problem, showLogout } = kit;

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
}
