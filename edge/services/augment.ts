/**
 * Prompt augmentation: before a Phi-3 generation, up to K past corrections (those with a
 * corrected_proposal) are prepended as worked examples, most relevant first:
 * same ticker as the prompt, then prompt similarity (pg_trgm), then recency.
 *
 * The search reads bounded candidate sets, each from its own partial index (ticker + recency,
 * trigram KNN, recency), and ranks only those: it stays an index lookup at a million rows.
 */
import { sql } from "drizzle-orm";
import { canonicalProposal, type TradeProposal } from "../../gpu-node/contract.ts";
import type { ServiceContext } from "../env.ts";

export interface WorkedExample {
  id: string;
  prompt: string;
  correctedProposal: TradeProposal;
  ticker: string | null;
  receivedAt: Date;
  sameTicker: boolean;
  similarity: number;
}

export interface Augmentation {
  prompt: string;
  examples: WorkedExample[];
}

/** Words that look like tickers in trading prose but are not. */
const NOT_TICKERS = new Set(
  (
    "A I AM AN AND ARE AS AT BE BUY BY CEO DO EPS ETF FOR GO HE IF IN IS IT ITS LONG ME MY NO NOT " +
    "OF OK ON OR PM SELL SHORT SO STOP THE TO UP US USA USD UTC WE PNL ATH ATR RSI EMA SMA MACD " +
    "VWAP IPO SEC FED CPI GDP YOY QOQ EOD EOW TP SL JSON PASS ABORT ADJUST"
  ).split(" "),
);

/**
 * Tickers mentioned in a prompt: `$AAPL`, or an upper-case word of 1-5 letters (optionally with
 * a class suffix such as BRK.B) that is not a common acronym. Order of first mention, no repeats.
 */
export function extractTickers(prompt: string): string[] {
  const found: string[] = [];
  const add = (t: string) => {
    const up = t.toUpperCase();
    if (!found.includes(up)) found.push(up);
  };
  for (const m of prompt.matchAll(/\$([A-Za-z]{1,5}(?:\.[A-Za-z])?)\b/g)) add(m[1] as string);
  for (const m of prompt.matchAll(/(?<![\w$.])([A-Z]{1,5}(?:\.[A-Z])?)(?![\w.])/g)) {
    const word = m[1] as string;
    if (!NOT_TICKERS.has(word) && (word.length > 1 || /\$/.test(prompt))) add(word);
  }
  return found.slice(0, 8);
}

/** Orders candidates: same ticker first, then similarity, then most recent. Pure. */
export function rankExamples(candidates: WorkedExample[], k: number): WorkedExample[] {
  const unique = new Map<string, WorkedExample>();
  for (const c of candidates) if (!unique.has(c.id)) unique.set(c.id, c);
  return [...unique.values()]
    .sort(
      (a, b) =>
        Number(b.sameTicker) - Number(a.sameTicker) ||
        b.similarity - a.similarity ||
        b.receivedAt.getTime() - a.receivedAt.getTime() ||
        b.id.localeCompare(a.id),
    )
    .slice(0, k);
}

const HEADER =
  "Here are past requests with the answers a human reviewer corrected them to. " +
  "Follow their judgement and format.\n\n";
const FOOTER = "Now answer this request.\nRequest: ";

/** Cuts text to at most `max` characters, marking the cut. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * Formats worked examples ahead of the prompt within a character budget (examples that do not
 * fit are left out; a long example prompt is clipped first). No examples: the prompt unchanged.
 */
export function buildAugmentedPrompt(
  prompt: string,
  examples: WorkedExample[],
  maxChars: number,
): Augmentation {
  const used: WorkedExample[] = [];
  let body = "";
  for (const ex of examples) {
    const answer = JSON.stringify(canonicalProposal(ex.correctedProposal));
    const fixed = `Example ${used.length + 1}\nRequest: \nCorrected answer: ${answer}\n\n`;
    const room = maxChars - HEADER.length - FOOTER.length - body.length - fixed.length;
    if (room < 40) break;
    const block = `Example ${used.length + 1}\nRequest: ${clip(ex.prompt.trim(), Math.min(room, 600))}\nCorrected answer: ${answer}\n\n`;
    body += block;
    used.push(ex);
  }
  if (used.length === 0) return { prompt, examples: [] };
  return { prompt: `${HEADER}${body}${FOOTER}${prompt}`, examples: used };
}

/** How many candidates each index contributes before ranking. */
const CANDIDATES_PER_SOURCE = 20;

interface CandidateRow extends Record<string, unknown> {
  id: string | number;
  prompt: string;
  corrected_proposal: TradeProposal | string;
  ticker: string | null;
  received_at: string | Date;
  same_ticker: boolean;
  similarity: number | string;
}

/** Reads candidate examples from the three partial indexes and ranks them. */
export async function selectExamples(
  ctx: Pick<ServiceContext, "db" | "settings" | "clock">,
  prompt: string,
): Promise<WorkedExample[]> {
  const k = ctx.settings.AUGMENT_MAX_EXAMPLES;
  if (k === 0) return [];
  const tickers = extractTickers(prompt);
  const maxAgeDays = ctx.settings.AUGMENT_MAX_AGE_DAYS;
  // An ISO string, not a Date: postgres-js under drizzle does not serialize Dates in raw SQL.
  const since = (
    maxAgeDays > 0 ? new Date(ctx.clock.now().getTime() - maxAgeDays * 86_400_000) : new Date(0)
  ).toISOString();
  const probe = prompt.slice(0, 1000);
  const tickerList = `{${tickers.map((t) => `"${t}"`).join(",")}}`;
  const n = CANDIDATES_PER_SOURCE;
  const result = await ctx.db.execute<CandidateRow>(sql`
    with candidates as (
      (select id from feedback_items
        where example_prompt is not null and example_ticker = any(${tickerList}::text[])
          and received_at >= ${since}::timestamptz
        order by example_ticker, received_at desc limit ${n})
      union
      (select id from feedback_items
        where example_prompt is not null and received_at >= ${since}::timestamptz
        order by example_prompt <-> ${probe} limit ${n})
      union
      (select id from feedback_items
        where example_prompt is not null and received_at >= ${since}::timestamptz
        order by received_at desc limit ${n})
    )
    select f.id, f.example_prompt as prompt, f.corrected_proposal, f.example_ticker as ticker,
           f.received_at,
           coalesce(f.example_ticker = any(${tickerList}::text[]), false) as same_ticker,
           similarity(coalesce(f.example_prompt, ''), ${probe}) as similarity
      from feedback_items f join candidates c on c.id = f.id`);
  const rows =
    (result as unknown as { rows?: CandidateRow[] }).rows ?? (result as unknown as CandidateRow[]);
  return rankExamples(
    rows.map((r) => ({
      id: String(r.id),
      prompt: r.prompt ?? "",
      correctedProposal:
        typeof r.corrected_proposal === "string"
          ? (JSON.parse(r.corrected_proposal) as TradeProposal)
          : r.corrected_proposal,
      ticker: r.ticker,
      receivedAt: new Date(r.received_at),
      sameTicker: r.same_ticker,
      similarity: Number(r.similarity),
    })),
    k,
  );
}

export async function augmentPrompt(
  ctx: Pick<ServiceContext, "db" | "settings" | "clock">,
  prompt: string,
): Promise<Augmentation> {
  const examples = await selectExamples(ctx, prompt);
  return buildAugmentedPrompt(prompt, examples, ctx.settings.AUGMENT_MAX_CHARS);
}
