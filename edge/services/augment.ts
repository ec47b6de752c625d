/**
 * Prompt augmentation: before a Phi-3 generation, up to K past corrections (those with a
 * corrected_proposal) are prepended as worked examples, most relevant first:
 * same ticker as the prompt, then shared words with the example's prompt (Postgres full-text
 * search, 'simple' configuration), then recency.
 *
 * The search reads bounded candidate sets from partial indexes (one scan per ticker, a GIN
 * full-text search for rare words over the whole age window, the most recent corrections) and
 * ranks only those, so its cost does not grow with the table (BENCHMARKS.md, section 2).
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

/** The distinct words of a prompt (letters and digits only, lower-cased, no stop words), at most 32. */
export function promptWords(prompt: string): string[] {
  const words = new Set<string>();
  for (const m of prompt.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const w = m[0];
    if (w.length > 1 && !STOP_WORDS.has(w)) words.add(w);
    if (words.size === 32) break;
  }
  return [...words];
}

/**
 * The words of a prompt as a 'simple' text-search OR query (`w1 | w2 | ...`): letters and digits
 * only, so nothing in it is tsquery syntax. Undefined when the prompt has no usable word.
 */
export function promptQuery(prompt: string): string | undefined {
  const words = promptWords(prompt);
  return words.length > 0 ? words.join(" | ") : undefined;
}

/** Corrections read from the full-text index (rare words, whole age window) before ranking. */
const WORD_MATCH_CANDIDATES = 50;

/** A word that the statistics say is in more rows than this is too common to search the index
 * for (it would match a good part of the table); the recent pool still ranks by it. */
const COMMON_WORD_ROWS = 1000;

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
 * Reads candidate examples and ranks them. Four bounded sources, none growing with the table:
 * - each ticker of the prompt: its most recent corrections, one index scan per ticker in index
 *   order (feedback_examples_ticker_idx; `= any(array)` would read and sort them all);
 * - the whole age window by full-text search (feedback_examples_tsv_idx, GIN) for the prompt's
 *   rare words: those that Postgres's statistics (ANALYZE's most common lexemes of example_tsv)
 *   do not put in more than COMMON_WORD_ROWS rows (a word of every template would match half
 *   the table), at most WORD_MATCH_CANDIDATES rows;
 * - the AUGMENT_SIMILARITY_POOL most recent corrections (feedback_examples_recent_idx), ranked by
 *   shared words (ts_rank), and by recency.
 * The union is ranked by rankExamples: same ticker, then shared words, then recency.
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
  const words = promptWords(prompt);
  const query = words.length > 0 ? words.join(" | ") : undefined;
  const tickerList = `{${tickers.map((t) => `"${t}"`).join(",")}}`;
  const wordList = `{${words.join(",")}}`;
  const n = CANDIDATES_PER_SOURCE;
  const pool = ctx.settings.AUGMENT_SIMILARITY_POOL;
  const rank = query ? sql`ts_rank(example_tsv, to_tsquery('simple', ${query}))` : sql`0`;
  const similar = query
    ? sql`union (select id from pool order by ${rank} desc limit ${n})
      union (
        select f.id from rare, feedback_items f
          where rare.q is not null and f.example_prompt is not null
            and f.example_tsv @@ rare.q and f.received_at >= ${since}::timestamptz
          limit ${WORD_MATCH_CANDIDATES})`
    : sql``;
  const result = await ctx.db.execute<CandidateRow>(sql`
    with pool as (
      select id, example_tsv from feedback_items
        where example_prompt is not null and received_at >= ${since}::timestamptz
        order by received_at desc nulls last limit ${pool}
    ),
    common as (
      select e.w from pg_stats s
        join pg_namespace ns on ns.nspname = s.schemaname
        join pg_class c on c.relnamespace = ns.oid and c.relname = s.tablename,
        unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) as e(w, freq)
        where s.schemaname = current_schema() and s.tablename = 'feedback_items'
          and s.attname = 'example_tsv' and e.w is not null
          and e.freq * c.reltuples > ${COMMON_WORD_ROWS}
    ),
    rare as (
      select to_tsquery('simple', string_agg(w, ' | ')) as q
        from unnest(${wordList}::text[]) as w where w not in (select w from common)
    ),
    candidates as (
      (select c.id from unnest(${tickerList}::text[]) as t(ticker)
        cross join lateral (
          select id from feedback_items
            where example_prompt is not null and example_ticker = t.ticker
              and received_at >= ${since}::timestamptz
            order by received_at desc nulls last limit ${n}
        ) c)
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
