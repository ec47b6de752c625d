/**
 * The review page's list: proposals newest first, by keyset (created_at, transaction_id), with
 * filters and each proposal's feedback count. `after` pages towards newer rows (and serves the
 * page's polling for new proposals); `before` towards older ones.
 */
import { and, desc, eq, type SQL, sql } from "drizzle-orm";
import { type ProposalEndpoint, proposals } from "../../db/schema/proposals.ts";
import type { TradeProposal } from "../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../deps.ts";
import { ApiError } from "../errors.ts";

export interface Cursor {
  at: Date;
  id: string;
}

export interface ListFilters {
  ticker?: string;
  endpoint?: ProposalEndpoint;
  from?: Date;
  /** Exclusive. */
  to?: Date;
  feedback?: "with" | "without";
}

export interface ListInput extends ListFilters {
  before?: Cursor;
  after?: Cursor;
  limit: number;
}

export interface ProposalSummary {
  transactionId: string;
  createdAt: Date;
  endpoint: ProposalEndpoint;
  proposal: TradeProposal;
  feedbackCount: number;
}

export interface ProposalPage {
  rows: ProposalSummary[];
  /** Cursor for the next older page, when there are older rows. */
  older?: Cursor;
  /** Cursor for the next newer page, when this is not the newest page. */
  newer?: Cursor;
}

export const encodeCursor = (c: Cursor) => `${c.at.toISOString()}_${c.id}`;

export function decodeCursor(text: string | undefined): Cursor | undefined {
  if (!text) return undefined;
  const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z)_([0-9a-f-]{36})$/i.exec(text);
  const at = m ? new Date(m[1] as string) : undefined;
  if (!m || !at || Number.isNaN(at.getTime())) {
    throw new ApiError("invalid_request", "Invalid page cursor.", { cursor: text });
  }
  return { at, id: (m[2] as string).toLowerCase() };
}

// Written out with table names: drizzle leaves columns of a one-table query unqualified, and an
// unqualified transaction_id inside the subquery would be the subquery's own.
const feedbackCountSql = sql<number>`(select count(*) from feedback_items f where f.transaction_id = "proposals"."transaction_id")`;

/** The filters as SQL conditions (shared with the queue). */
export function filterConditions(f: ListFilters): (SQL | undefined)[] {
  const has = sql`exists (select 1 from feedback_items f where f.transaction_id = "proposals"."transaction_id")`;
  return [
    f.ticker
      ? sql`upper(${proposals.phi3Proposal}->>'ticker') = ${f.ticker.trim().toUpperCase()}`
      : undefined,
    f.endpoint ? eq(proposals.endpoint, f.endpoint) : undefined,
    f.from ? sql`${proposals.createdAt} >= ${f.from.toISOString()}::timestamptz` : undefined,
    f.to ? sql`${proposals.createdAt} < ${f.to.toISOString()}::timestamptz` : undefined,
    f.feedback === "with" ? has : f.feedback === "without" ? sql`not ${has}` : undefined,
  ];
}

/** (created_at, transaction_id) compared with a cursor: "<" or ">". */
export function keyset(op: "<" | ">", c: Cursor): SQL {
  return sql`(${proposals.createdAt}, ${proposals.transactionId}) ${sql.raw(op)} (${c.at.toISOString()}::timestamptz, ${c.id}::uuid)`;
}

export async function listProposals({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: ListInput;
}): Promise<ProposalPage> {
  const towardsNewer = input.after !== undefined && input.before === undefined;
  const order = towardsNewer
    ? [sql`${proposals.createdAt} asc`, sql`${proposals.transactionId} asc`]
    : [desc(proposals.createdAt), desc(proposals.transactionId)];
  let rows: ProposalSummary[];
  try {
    rows = await ctx.db
      .select({
        transactionId: proposals.transactionId,
        createdAt: proposals.createdAt,
        endpoint: proposals.endpoint,
        proposal: proposals.phi3Proposal,
        feedbackCount: feedbackCountSql.mapWith(Number),
      })
      .from(proposals)
      .where(
        and(
          ...filterConditions(input),
          input.before ? keyset("<", input.before) : undefined,
          input.after ? keyset(">", input.after) : undefined,
        ),
      )
      .orderBy(...order)
      .limit(input.limit + 1);
  } catch (err) {
    throw new ApiError("database_unavailable", "Could not read the record.", {}, { cause: err });
  }
  const more = rows.length > input.limit;
  rows = rows.slice(0, input.limit);
  if (towardsNewer) rows.reverse();
  const first = rows[0];
  const last = rows.at(-1);
  const cursorOf = (r: ProposalSummary): Cursor => ({ at: r.createdAt, id: r.transactionId });
  return {
    rows,
    older:
      last && (towardsNewer || more)
        ? cursorOf(last)
        : !last && input.after
          ? input.after
          : undefined,
    newer:
      first && (input.before || (towardsNewer && more))
        ? cursorOf(first)
        : !first && input.before
          ? input.before
          : undefined,
  };
}
