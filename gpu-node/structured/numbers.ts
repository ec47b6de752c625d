/**
 * Numbers with bounds, exactly: the regular language of the decimals our grammar writes (no
 * exponent, at most MAX_INT_DIGITS integer and MAX_FRACTION_DIGITS fraction digits, no `-0`)
 * whose value, once a JSON parser has read it into a double, satisfies `minimum`, `maximum`,
 * `exclusiveMinimum` and `exclusiveMaximum` as a validator (ajv) checks them.
 *
 * Why not compare with the bound's decimal text: parsing rounds. `999999999999999.9999` is below
 * 1e15 as a decimal but parses to 1e15, so a text below an exclusive maximum can fail it. The
 * exact thresholds, by the midpoints between neighbouring doubles (parsing is monotonic and rounds
 * to the nearest double):
 * - `maximum M`: the text's exact value < the midpoint of M and the double above it (so it
 *   parses to at most M; `0.3` passes `maximum: 0.3` although the double 0.3 is below 3/10);
 * - `exclusiveMaximum M`: the exact value < the midpoint of M and the double below it (so it
 *   parses to at most that lower double);
 * - `minimum` and `exclusiveMinimum` mirrored.
 * A text exactly on a midpoint is left out (sound; at most one value lost per bound).
 *
 * The language is built digit by digit, the way one writes a regular expression for an integer
 * range: for each integer length, a walk along the bounds' digits that stays "tight" to a bound
 * while it follows its digits and becomes free once it departs from them.
 */
import { alt, bytes, type Lang, lit, opt, rep, seq } from "./language.ts";

/** Digits allowed in a number's integer part and fraction: keeps every number finite and exact
 * enough, and gives the budget planner a bounded worst case. */
export const MAX_INT_DIGITS = 15;
export const MAX_FRACTION_DIGITS = 15;

export interface NumberBounds {
  integer: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

/** An exact rational `n / 10^scale`. */
interface Scaled {
  n: bigint;
  scale: number;
}

interface Bound {
  value: Scaled;
  /** true: the value itself is excluded. */
  strict: boolean;
}

/** A nonnegative bound as digits: `int` without leading zeros ("0" below 1), `frac` without
 * trailing zeros. */
interface DigitBound {
  int: string;
  frac: string;
  strict: boolean;
}

const view = new DataView(new ArrayBuffer(8));

/** The exact value of a double (every finite double is a finite decimal). */
export function exactDecimal(x: number): Scaled {
  if (x === 0) return { n: 0n, scale: 0 };
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const exponentBits = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = exponentBits === 0 ? fraction : fraction | (1n << 52n);
  const exponent = exponentBits === 0 ? -1074 : exponentBits - 1075;
  const magnitude: Scaled =
    exponent >= 0
      ? { n: mantissa << BigInt(exponent), scale: 0 }
      : { n: mantissa * 5n ** BigInt(-exponent), scale: -exponent };
  while (magnitude.scale > 0 && magnitude.n % 10n === 0n) {
    magnitude.n /= 10n;
    magnitude.scale--;
  }
  return negative ? { n: -magnitude.n, scale: magnitude.scale } : magnitude;
}

function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  view.setFloat64(0, x);
  view.setBigInt64(0, view.getBigInt64(0) + (x > 0 ? 1n : -1n));
  return view.getFloat64(0);
}

const nextDown = (x: number): number => -nextUp(-x);

function align(a: Scaled, b: Scaled): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.n * 10n ** BigInt(scale - a.scale), b.n * 10n ** BigInt(scale - b.scale), scale];
}

function compare(a: Scaled, b: Scaled): number {
  const [x, y] = align(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** (a + b) / 2, exactly. */
function midpoint(a: number, b: number): Scaled {
  const [x, y, scale] = align(exactDecimal(a), exactDecimal(b));
  return { n: (x + y) * 5n, scale: scale + 1 };
}

const negate = (s: Scaled): Scaled => ({ n: -s.n, scale: s.scale });

function digits(value: Scaled, strict: boolean): DigitBound {
  if (value.n < 0n) throw new Error("digits of a negative bound");
  const text = value.n.toString().padStart(value.scale + 1, "0");
  const int = text.slice(0, text.length - value.scale).replace(/^0+(?=\d)/, "");
  const frac = text.slice(text.length - value.scale).replace(/0+$/, "");
  return { int, frac, strict };
}

/** The tighter of two lower (or, with `upper`, upper) bounds. */
function tighter(a: Bound | undefined, b: Bound | undefined, upper: boolean): Bound | undefined {
  if (!a) return b;
  if (!b) return a;
  const c = compare(a.value, b.value) * (upper ? -1 : 1);
  if (c !== 0) return c > 0 ? a : b;
  return a.strict ? a : b;
}

const digit = bytes([0x30, 0x39]);
const digitRange = (from: number, to: number): Lang =>
  from === to ? lit(String(from)) : bytes([0x30 + from, 0x30 + to]);

/** A sequence, or undefined when any part is empty (no string at all). */
function cat(...items: (Lang | undefined)[]): Lang | undefined {
  if (items.some((item) => item === undefined)) return undefined;
  const kept = (items as Lang[]).filter(
    (item) => !(item.kind === "seq" && item.items.length === 0),
  );
  return kept.length === 1 ? (kept[0] as Lang) : seq(...kept);
}

/** An alternation of the non-empty options, or undefined when none is left. */
export function choice(...items: (Lang | undefined)[]): Lang | undefined {
  const kept = items.filter((item): item is Lang => item !== undefined);
  if (kept.length === 0) return undefined;
  return kept.length === 1 ? (kept[0] as Lang) : alt(...kept);
}

/** Nonnegative decimals (no sign) between the bounds; undefined when there is none. */
function nonnegative(
  lo: DigitBound | undefined,
  hi: DigitBound | undefined,
  fraction: boolean,
): Lang | undefined {
  const fracOpt = fraction ? opt(seq(lit("."), rep(digit, 1, MAX_FRACTION_DIGITS))) : seq();
  const bands: (Lang | undefined)[] = [];
  // Consecutive lengths >= 2 that neither bound reaches are one alternative,
  // `[1-9] [0-9]{a-1,b-1} fraction?`: fifteen parallel ones made xgrammar's masks slow.
  let free: [number, number] | undefined;
  const flush = () => {
    if (!free) return;
    const [a, b] = free;
    bands.push(seq(digitRange(1, 9), rep(digit, a - 1, b - 1), fracOpt));
    free = undefined;
  };
  for (let n = 1; n <= MAX_INT_DIGITS; n++) {
    if (hi && hi.int.length < n) break;
    if (lo && lo.int.length > n) continue;
    const tl = lo?.int.length === n ? lo : undefined;
    const th = hi?.int.length === n ? hi : undefined;
    if (!tl && !th && n > 1) {
      free = free ? [free[0], n] : [n, n];
      continue;
    }
    flush();
    bands.push(band(n, tl, th));
  }
  flush();
  return choice(...bands);

  /** Numbers with exactly `n` integer digits, tight to `lo0`/`hi0` when given. */
  function band(n: number, lo0?: DigitBound, hi0?: DigitBound): Lang | undefined {
    const digitAt = (b: DigitBound, pos: number): number =>
      Number(pos < n ? b.int[pos] : (b.frac[pos - n] ?? "0"));
    /** Whether the bound has a nonzero digit at or after aligned position `pos`. */
    const restNonzero = (b: DigitBound, pos: number): boolean =>
      pos < n ? /[1-9]/.test(b.int.slice(pos)) || b.frac.length > 0 : b.frac.length > pos - n;
    const loose = (pos: number): Lang => {
      if (pos === 0 && n > 1) return seq(digitRange(1, 9), rep(digit, n - 1, n - 1), fracOpt);
      if (pos < n) return seq(rep(digit, n - pos, n - pos), fracOpt);
      if (pos === n) return fracOpt;
      return fraction ? rep(digit, 0, MAX_FRACTION_DIGITS - (pos - n)) : seq();
    };
    /** Whether the text may end after `pos` digits while tight to the given bounds. */
    const canStop = (pos: number, tl?: DigitBound, th?: DigitBound): boolean => {
      if (pos < n) return false;
      // Tight to lo with more nonzero digits left in lo: the value is below lo.
      if (tl && (restNonzero(tl, pos) || tl.strict)) return false;
      // Tight to hi: below hi when hi has more digits, equal to it otherwise.
      if (th && !restNonzero(th, pos) && th.strict) return false;
      return true;
    };
    const memo = new Map<string, Lang | undefined>();
    /** Everything that may follow `pos` digits written tight to `tl`/`th`. */
    const after = (pos: number, tl?: DigitBound, th?: DigitBound): Lang | undefined => {
      // At or above a non-strict lo whatever follows: lo no longer constrains.
      if (tl && !tl.strict && !restNonzero(tl, pos)) tl = undefined;
      if (!tl && !th) return loose(pos);
      const key = `${pos}|${tl ? 1 : 0}|${th ? 1 : 0}`;
      if (memo.has(key)) return memo.get(key);
      let result: Lang | undefined;
      if (pos < n) {
        result = step(pos, pos === 0 && n > 1 ? 1 : 0, tl, th);
      } else {
        const k = pos - n;
        const more = fraction && k < MAX_FRACTION_DIGITS ? step(pos, 0, tl, th) : undefined;
        result = choice(
          canStop(pos, tl, th) ? seq() : undefined,
          more && (k === 0 ? cat(lit("."), more) : more),
        );
      }
      memo.set(key, result);
      return result;
    };
    /** One digit at `pos` (at least `least`), then what follows it. */
    const step = (
      pos: number,
      least: number,
      tl?: DigitBound,
      th?: DigitBound,
    ): Lang | undefined => {
      const low = tl ? digitAt(tl, pos) : least;
      const high = th ? digitAt(th, pos) : 9;
      if (tl && th && low > high) return undefined;
      if (tl && th && low === high) return cat(lit(String(low)), after(pos + 1, tl, th));
      const from = tl ? low + 1 : Math.max(least, low);
      const to = th ? high - 1 : 9;
      return choice(
        tl && low >= least ? cat(lit(String(low)), after(pos + 1, tl, undefined)) : undefined,
        th && high >= least ? cat(lit(String(high)), after(pos + 1, undefined, th)) : undefined,
        from <= to ? cat(digitRange(from, to), loose(pos + 1)) : undefined,
      );
    };
    return after(0, lo0, hi0);
  }
}

/** Beyond this magnitude no number the grammar writes (15 integer digits) reaches a bound. */
const FAR = 1e16;

/** The lower threshold `minimum`/`exclusiveMinimum` put on a text's exact value: undefined when
 * it constrains nothing the grammar writes, null when nothing is left. */
function lowerBound(bounds: NumberBounds): Bound | undefined | null {
  const candidates: Bound[] = [];
  for (const [x, exclusive] of [
    [bounds.minimum, false],
    [bounds.exclusiveMinimum, true],
  ] as const) {
    if (x === undefined || x <= -FAR) continue;
    if (x >= FAR) return null;
    // The text parses to >= x (> x) exactly when its value is above the midpoint between x and
    // the double below (above) it.
    candidates.push({
      value: exclusive ? midpoint(x, nextUp(x)) : midpoint(nextDown(x), x),
      strict: true,
    });
  }
  return candidates.reduce<Bound | undefined>((a, b) => tighter(a, b, false), undefined);
}

function upperBound(bounds: NumberBounds): Bound | undefined | null {
  const candidates: Bound[] = [];
  for (const [x, exclusive] of [
    [bounds.maximum, false],
    [bounds.exclusiveMaximum, true],
  ] as const) {
    if (x === undefined || x >= FAR) continue;
    if (x <= -FAR) return null;
    candidates.push({
      value: exclusive ? midpoint(nextDown(x), x) : midpoint(x, nextUp(x)),
      strict: true,
    });
  }
  return candidates.reduce<Bound | undefined>((a, b) => tighter(a, b, true), undefined);
}

/** The language of the numbers (or integers) within the bounds; undefined when it is empty. */
export function boundedNumber(bounds: NumberBounds): Lang | undefined {
  const lo = lowerBound(bounds);
  const hi = upperBound(bounds);
  if (lo === null || hi === null) return undefined;
  const fraction = !bounds.integer;
  const zero: Scaled = { n: 0n, scale: 0 };
  // value >= 0, written without a sign.
  const positive =
    hi && hi.value.n < 0n
      ? undefined
      : nonnegative(
          lo && lo.value.n >= 0n ? digits(lo.value, lo.strict) : undefined,
          hi ? digits(hi.value, hi.strict) : undefined,
          fraction,
        );
  // value < 0, written as "-" and its magnitude x > 0 (never -0).
  const negative =
    lo && lo.value.n >= 0n
      ? undefined
      : cat(
          lit("-"),
          nonnegative(
            hi && hi.value.n < 0n ? digits(negate(hi.value), hi.strict) : digits(zero, true),
            lo ? digits(negate(lo.value), lo.strict) : undefined,
            fraction,
          ),
        );
  return choice(positive, negative);
}
