/**
 * Prompt augmentation: before a Phi-3 generation, up to K past corrections (those with a
 * corrected_proposal) are prepended as worked examples, most relevant first:
 * same ticker as the prompt, then shared words with the example's prompt (Postgres full-text
 * search, 'simple' configuration), then recency.
 *
 * The search reads bounded candidate sets from partial indexes and ranks only those, so its cost
 * does not grow with the table (BENCHMARKS.md, section 2).
 */
import { sql } from "drizzle-orm";
import { canonicalProposal, type TradeProposal } from "../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../deps.ts";

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
    "VWAP IPO SEC FED FOMC CPI PPI GDP YOY QOQ EOD EOW TP SL JSON PASS ABORT ADJUST"
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

/** How many candidates each source contributes before ranking. */
const CANDIDATES_PER_SOURCE = 20;

const STOP_WORDS = new Set(
  (
    "a an and are as at be been but by can do does for from had has have how i if in into is it " +
    "its me my no not of on or our should so than that the their them then there these this to " +
    "too up was we what when which who will with would you your"
  ).split(" "),
);

/**
 * The words of a prompt as a 'simple' text-search OR query (`w1 | w2 | ...`): letters and digits
 * only, so nothing in it is tsquery syntax. Undefined when the prompt has no usable word.
 */
export function promptQuery(prompt: string): string | undefined {
  const words = new Set<string>();
  for (const m of prompt.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const w = m[0];
    if (w.length > 1 && !STOP_WORDS.has(w)) words.add(w);
    if (words.size === 32) break;
  }
  return words.size > 0 ? [...words].join(" | ") : undefined;
}

interface CandidateRow extends Record<string, unknown> {
  id: string | number;
  prompt: string;
  corrected_proposal: TradeProposal | string;
  ticker: string | null;
  received_at: string | Date;
  same_ticker: boolean;
  similarity: number | string;
}

/**
 * Reads candidate examples and ranks them. Three bounded sources, each an index scan that does
 * not grow with the table: the same tickers (feedback_examples_ticker_idx), and the most recent
 * AUGMENT_SIMILARITY_POOL examples (feedback_examples_recent_idx), ranked by shared words
 * (ts_rank over the stored example_tsv) and by recency.
 */
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
  const query = promptQuery(prompt);
  const tickerList = `{${tickers.map((t) => `"${t}"`).join(",")}}`;
  const n = CANDIDATES_PER_SOURCE;
  const pool = ctx.settings.AUGMENT_SIMILARITY_POOL;
  const rank = query ? sql`ts_rank(example_tsv, to_tsquery('simple', ${query}))` : sql`0`;
  const similar = query ? sql`union (select id from pool order by ${rank} desc limit ${n})` : sql``;
  const result = await ctx.db.execute<CandidateRow>(sql`
    with pool as (
      select id, example_tsv from feedback_items
        where example_prompt is not null and received_at >= ${since}::timestamptz
        order by received_at desc limit ${pool}
    ),
    candidates as (
      (select id from feedback_items
        where example_prompt is not null and example_ticker = any(${tickerList}::text[])
          and received_at >= ${since}::timestamptz
        order by example_ticker, received_at desc limit ${n})
      ${similar}
      union
      (select id from pool limit ${n})
    )
    select f.id, f.example_prompt as prompt, f.corrected_proposal, f.example_ticker as ticker,
           f.received_at,
           coalesce(f.example_ticker = any(${tickerList}::text[]), false) as same_ticker,
           ${rank} as similarity
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
