/** @jsxImportSource hono/jsx */
/**
 * /review's one write: a trader's feedback on a proposal (a correction, a rating or a comment),
 * checked, stored through the feedback service, then back to the proposal or the queue.
 */
import type { Hono } from "hono";
import { ApiError } from "../errors.ts";
import { submitFeedback } from "../services/feedback.ts";
import { getProposal } from "../services/get-proposal.ts";
import { encodeCursor } from "../services/list-proposals.ts";
import { parseProposalForm, parseReviewFields, sameProposal } from "./form-model.ts";
import type { FormErrors } from "./pages/proposal.tsx";
import { ProposalPage } from "./pages/proposal.tsx";
import { formValues, type PageKit, type ReviewEnv } from "./route-kit.ts";

export function registerFeedbackRoute(review: Hono<ReviewEnv>, kit: PageKit): void {
  const { render, problem, showLogout } = kit;

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
}
