/** @jsxImportSource hono/jsx */
/** The list of proposals: filters, rows, keyset pager; the script polls for new rows. */
import {
  encodeCursor,
  type ProposalPage,
  type ProposalSummary,
} from "../../services/list-proposals.ts";
import { fmtTime, Layout } from "./layout.tsx";

export interface ListQuery {
  ticker?: string;
  endpoint?: string;
  from?: string;
  to?: string;
  feedback?: string;
}

const ZERO_ID = "00000000-0000-0000-0000-000000000000";

const ENDPOINTS = ["generate", "generate_phi3", "propose_trade_adjustments"] as const;

const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/** The filters as a query string (without the pager's cursor). */
export function filterQuery(q: ListQuery): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v) params.set(k, v);
  return params.toString();
}

export function Rows(p: { rows: ProposalSummary[]; fresh?: boolean }) {
  return (
    <>
      {p.rows.map((r) => (
        <tr
          class={p.fresh ? "fresh" : undefined}
          data-cursor={encodeCursor({ at: r.createdAt, id: r.transactionId })}
        >
          <td>
            <a href={`/review/${r.transactionId}`}>
              <time datetime={r.createdAt.toISOString()}>{fmtTime(r.createdAt)}</time>
            </a>
          </td>
          <td>{r.proposal.ticker}</td>
          <td>{r.proposal.action}</td>
          <td>{r.proposal.side ?? "—"}</td>
          <td class="num">{r.proposal.confidence.toFixed(2)}</td>
          <td>{clip(r.proposal.rationale, 90)}</td>
          <td class="num">{r.feedbackCount}</td>
          <td class="muted">{r.endpoint}</td>
        </tr>
      ))}
    </>
  );
}

export function ListPage(p: {
  query: ListQuery;
  page: ProposalPage;
  firstPage: boolean;
  csrf: string;
  showLogout: boolean;
}) {
  const q = p.query;
  const base = filterQuery(q);
  const link = (k: "before" | "after", c: { at: Date; id: string }) =>
    `/review?${base ? `${base}&` : ""}${k}=${encodeURIComponent(encodeCursor(c))}`;
  const top = p.page.rows[0];
  return (
    <Layout title="Proposals" current="list" page="list" csrf={p.csrf} showLogout={p.showLogout}>
      <h1>Proposals</h1>
      <form class="filters" method="get" action="/review" aria-label="Filter proposals">
        <div>
          <label for="ticker">Ticker</label>
          <input id="ticker" name="ticker" value={q.ticker ?? ""} size={8} autocomplete="off" />
        </div>
        <div>
          <label for="endpoint">Endpoint</label>
          <select id="endpoint" name="endpoint">
            <option value="">any</option>
            {ENDPOINTS.map((e) => (
              <option value={e} selected={q.endpoint === e}>
                {e}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="from">From (UTC date)</label>
          <input id="from" name="from" type="date" value={q.from ?? ""} />
        </div>
        <div>
          <label for="to">To (UTC date, inclusive)</label>
          <input id="to" name="to" type="date" value={q.to ?? ""} />
        </div>
        <div>
          <label for="feedback">Feedback</label>
          <select id="feedback" name="feedback">
            <option value="">any</option>
            <option value="with" selected={q.feedback === "with"}>
              has feedback
            </option>
            <option value="without" selected={q.feedback === "without"}>
              none yet
            </option>
          </select>
        </div>
        <button type="submit">Filter</button>
        <a class="button secondary" href="/review">
          Clear
        </a>
      </form>
      <p class="muted" id="live" role="status" aria-live="polite">
        {p.firstPage ? "New proposals appear here as they arrive." : ""}
      </p>
      <table class="list">
        <caption class="skip">Proposals, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time (UTC)</th>
            <th scope="col">Ticker</th>
            <th scope="col">Action</th>
            <th scope="col">Side</th>
            <th scope="col">Confidence</th>
            <th scope="col">Rationale</th>
            <th scope="col">Feedback</th>
            <th scope="col">Endpoint</th>
          </tr>
        </thead>
        <tbody
          id="rows"
          data-poll={p.firstPage ? `/review/rows?${base}` : undefined}
          data-cursor={encodeCursor(
            top ? { at: top.createdAt, id: top.transactionId } : { at: new Date(0), id: ZERO_ID },
          )}
        >
          <Rows rows={p.page.rows} />
        </tbody>
      </table>
      {p.page.rows.length === 0 ? <p id="empty">No proposals match.</p> : null}
      <nav class="pager" aria-label="Pages">
        {p.page.newer ? <a href={link("after", p.page.newer)}>← Newer</a> : null}
        {!p.firstPage ? <a href={`/review${base ? `?${base}` : ""}`}>Newest</a> : null}
        {p.page.older ? <a href={link("before", p.page.older)}>Older →</a> : null}
      </nav>
    </Layout>
  );
}
