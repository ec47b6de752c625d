/**
 * Seeded synthetic feedback: proposals and feedback items as the edge writes them (tickers,
 * prompts, corrections), as CSV for COPY. The same seed gives the same rows on every machine.
 *
 * Mix per feedback row: 40 % corrections with a corrected proposal (worked examples), 10 %
 * corrections without one, 30 % ratings, 20 % comments; 4 feedback rows per proposal; received
 * over the last 120 days (so a quarter falls outside the default 90-day window).
 */
import type { TradeProposal } from "../../gpu-node/contract/index.ts";
import { seededRandom } from "../lib/stats.ts";

const REAL = (
  "AAPL MSFT NVDA AMZN GOOGL META TSLA AVGO JPM V UNH XOM JNJ WMT MA PG HD CVX MRK ABBV KO PEP " +
  "COST ADBE CRM NFLX AMD INTC QCOM TXN ORCL IBM BA CAT GE GS MS BAC C WFC SPY QQQ IWM DIA TLT GLD"
).split(" ");

/** 2,000 tickers: the real ones above and seeded 3-4 letter symbols. */
export function tickerUniverse(seed = 1): string[] {
  const rnd = seededRandom(seed);
  const set = new Set(REAL);
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  while (set.size < 2000) {
    const len = rnd() < 0.5 ? 3 : 4;
    let t = "";
    for (let i = 0; i < len; i++) t += letters[Math.floor(rnd() * 26)];
    set.add(t);
  }
  return [...set];
}

const EVENTS = [
  "after a gap up on earnings",
  "into the FOMC decision",
  "after breaking the 50-day moving average",
  "on heavy volume near resistance",
  "while implied volatility is elevated",
  "after a downgrade this morning",
  "ahead of the CPI print",
  "following a failed breakout",
];
const TEMPLATES = [
  (t: string, s: string, e: string, a: number, b: number) =>
    `Adjust the stop for my ${s} ${t} position ${e}. Entry ${a}, stop ${b}%.`,
  (t: string, s: string, e: string, a: number, b: number) =>
    `Should I tighten the target on ${t} (${s}) ${e}? Current target ${b}%, price ${a}.`,
  (t: string, s: string, e: string, a: number, b: number) =>
    `${t} ${s} from ${a}: ${e}, risk is ${b}% of equity. Adjust, pass or abort?`,
  (t: string, s: string, e: string, a: number, b: number) =>
    `Review my ${t} trade ${e}; I am ${s} with a ${b}% stop at ${a}.`,
];

export function makePrompt(rnd: () => number, ticker: string): string {
  const tpl = TEMPLATES[Math.floor(rnd() * TEMPLATES.length)] as (typeof TEMPLATES)[number];
  const side = rnd() < 0.6 ? "long" : "short";
  const event = EVENTS[Math.floor(rnd() * EVENTS.length)] as string;
  return tpl(ticker, side, event, Math.round(rnd() * 50000) / 100, Math.round(rnd() * 100) / 10);
}

function proposal(rnd: () => number, ticker: string): TradeProposal {
  const action = rnd() < 0.7 ? "adjust" : rnd() < 0.5 ? "pass" : "abort";
  return {
    ticker,
    action,
    side: rnd() < 0.6 ? "LONG" : "SHORT",
    new_stop_pct: action === "adjust" ? Math.round(rnd() * 100) / 10 : null,
    new_target_pct: action === "adjust" ? Math.round(rnd() * 200) / 10 : null,
    confidence: Math.round(rnd() * 100) / 100,
    rationale: `Reviewer: ${action} because the setup ${rnd() < 0.5 ? "weakened" : "held"}.`,
  };
}

/** A version-4-shaped UUID from the seeded generator (randomUUID would break reproducibility). */
function seededUuid(rnd: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(rnd() * 16).toString(16));
  hex[12] = "4";
  hex[16] = ((Math.floor(rnd() * 4) & 0x3) | 0x8).toString(16);
  const h = hex.join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const q = (v: string | null): string => (v === null ? "" : `"${v.replaceAll('"', '""')}"`);

export interface Chunk {
  proposals: string;
  feedback: string;
  examples: number;
}

/**
 * Yields CSV chunks (about 10k feedback rows each) for `rows` feedback rows.
 * Columns: see PROPOSAL_COLUMNS / FEEDBACK_COLUMNS.
 */
export function* feedbackCsv(rows: number, now: Date, seed = 42): Generator<Chunk> {
  const rnd = seededRandom(seed);
  // Ids from a stream of their own, so they do not shift the other draws.
  const idRnd = seededRandom(seed ^ 0x5bd1e995);
  const tickers = tickerUniverse();
  const span = 120 * 86_400_000;
  const chunkRows = 10_000;
  for (let start = 0; start < rows; start += chunkRows) {
    let p = "";
    let f = "";
    let examples = 0;
    const end = Math.min(rows, start + chunkRows);
    for (let i = start; i < end; i += 4) {
      // Popular tickers come up far more often (a skewed, realistic mix).
      const ticker = tickers[Math.floor(rnd() ** 3 * tickers.length)] as string;
      const prompt = makePrompt(rnd, ticker);
      const tx = seededUuid(idRnd);
      const created = new Date(now.getTime() - rnd() * span);
      const made = JSON.stringify(proposal(rnd, ticker));
      p += `${tx},${q(created.toISOString())},"propose_trade_adjustments",${q(prompt)},${q(prompt)},256,${q(made)},"phi3",40,60\n`;
      for (let k = i; k < Math.min(end, i + 4); k++) {
        const r = rnd();
        const received = new Date(created.getTime() + rnd() * 3_600_000).toISOString();
        const kind = r < 0.5 ? "correction" : r < 0.8 ? "rating" : "qualitative_comment";
        const isExample = r < 0.4;
        const content =
          kind === "rating"
            ? JSON.stringify(Math.ceil(rnd() * 5))
            : JSON.stringify(kind === "correction" ? "Stop too tight." : "Good call on the exit.");
        const corrected = isExample ? JSON.stringify(proposal(rnd, ticker)) : null;
        if (isExample) examples++;
        f += `${tx},${q(kind)},${q(content)},${q(received)},${q(corrected)},${q(received)},${isExample ? q(ticker) : ""},${isExample ? q(prompt) : ""}\n`;
      }
    }
    yield { proposals: p, feedback: f, examples };
  }
}

export const PROPOSAL_COLUMNS =
  "transaction_id, created_at, endpoint, prompt, augmented_prompt, max_length, phi3_proposal, phi3_model, phi3_prompt_tokens, phi3_completion_tokens";
export const FEEDBACK_COLUMNS =
  "transaction_id, feedback_type, feedback_content, timestamp, corrected_proposal, received_at, example_ticker, example_prompt";

/** Query prompts: the same templates, tickers drawn from the universe and a few unknown ones. */
export function queryPrompts(n: number, seed = 99): string[] {
  const rnd = seededRandom(seed);
  const tickers = tickerUniverse();
  return Array.from({ length: n }, () => {
    const ticker =
      rnd() < 0.1 ? "ZZZQ" : (tickers[Math.floor(rnd() ** 2 * tickers.length)] as string);
    return makePrompt(rnd, ticker);
  });
}
