/** @jsxImportSource hono/jsx */
/** The queue: proposals without feedback, oldest first, one at a time, with keyboard shortcuts. */
import type { FeedbackRow } from "../../../db/schema/feedback.ts";
import type { ProposalDetail } from "../../services/get-proposal.ts";
import { encodeCursor } from "../../services/list-proposals.ts";
import type { FormValues } from "../form-model.ts";
import { fmtTime, Layout } from "./layout.tsx";
import { FeedbackItem, type FormErrors, ProposalBody } from "./proposal.tsx";

export function QueuePage(p: {
  detail?: ProposalDetail;
  remaining: number;
  hasPrevious: boolean;
  hasNext: boolean;
  stored?: FeedbackRow;
  form: { values: FormValues; errors: FormErrors; message?: string };
  csrf: string;
  showLogout: boolean;
}) {
  const row = p.detail?.row;
  const cursor = row
    ? encodeURIComponent(encodeCursor({ at: row.createdAt, id: row.transactionId }))
    : "";
  return (
    <Layout title="Queue" current="queue" page="queue" csrf={p.csrf} showLogout={p.showLogout}>
      <h1>
        Review queue <span class="muted">({p.remaining} without feedback, oldest first)</span>
      </h1>
      {p.stored ? (
        <div class="notice" role="status" id="stored-notice">
          <p style="margin:0 0 4px">
            Stored {p.stored.feedbackType} #{p.stored.id} for{" "}
            <a href={`/review/${p.stored.transactionId}#feedback-${p.stored.id}`}>
              proposal {p.stored.transactionId.slice(0, 8)}
            </a>
            :
          </p>
          <FeedbackItem item={p.stored} copy />
        </div>
      ) : null}
      <p class="muted" id="shortcuts">
        Shortcuts: <kbd>n</kbd> next, <kbd>p</kbd> previous, <kbd>e</kbd> edit the first field,{" "}
        <kbd>1</kbd>–<kbd>5</kbd> rating, <kbd>Ctrl</kbd>+<kbd>Enter</kbd> save, <kbd>Esc</kbd>{" "}
        leave a field.
      </p>
      <nav class="pager" aria-label="Queue">
        {p.hasPrevious ? (
          <a id="queue-prev" href={`/review/queue?before=${cursor}`} rel="prev">
            ← Previous
          </a>
        ) : (
          <span class="muted">← Previous</span>
        )}
        {p.hasNext ? (
          <a id="queue-next" href={`/review/queue?after=${cursor}`} rel="next">
            Next →
          </a>
        ) : (
          <span class="muted">Next →</span>
        )}
      </nav>
      {p.detail && row ? (
        <>
          <h2 style="font-size:1.3rem">
            <a href={`/review/${row.transactionId}`}>
              {row.phi3Proposal.ticker}: {row.phi3Proposal.action}
              {row.phi3Proposal.side ? ` ${row.phi3Proposal.side}` : ""}
            </a>{" "}
            <span class="muted">({fmtTime(row.createdAt)} UTC)</span>
          </h2>
          <ProposalBody detail={p.detail} form={p.form} csrf={p.csrf} returnTo="queue" />
        </>
      ) : (
        <p id="queue-empty">Nothing left here: every proposal has feedback.</p>
      )}
    </Layout>
  );
}
