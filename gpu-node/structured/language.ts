/**
 * A tiny regular-language toolkit: one description of the output language, printed as EBNF for
 * xgrammar (which masks the logits) and compiled into a byte-level NFA of our own (which plans
 * the token budget: the shortest way to finish from wherever the output is).
 *
 * Why our own automaton next to xgrammar: xgrammar answers "which tokens may come next" very
 * fast, but not "how far is the end". The trade object's language is regular (one flat object of
 * strings, enums and numbers), so a small NFA gives exact shortest completions. Both views come
 * from the same AST, so they describe the same language.
 */

export type Lang =
  | { readonly kind: "lit"; readonly text: string }
  /** One byte in the given inclusive ranges; printed as an EBNF class (ASCII only). */
  | { readonly kind: "bytes"; readonly ranges: readonly (readonly [number, number])[] }
  /** One Unicode character: `ebnf` is the code-point class for xgrammar, `bytes` its UTF-8. */
  | { readonly kind: "char"; readonly ebnf: string; readonly bytes: Lang }
  | { readonly kind: "seq"; readonly items: readonly Lang[] }
  | { readonly kind: "alt"; readonly items: readonly Lang[] }
  | { readonly kind: "rep"; readonly item: Lang; readonly min: number; readonly max: number }
  /** A named EBNF rule; the NFA inlines it. */
  | { readonly kind: "rule"; readonly name: string; readonly body: Lang }
  /**
   * `(items[0] | items[1] | …)* end`, printed as the right-recursive rule
   * `name ::= end | items[0] name | items[1] name | …`; the NFA builds it as that star.
   */
  | {
      readonly kind: "loop";
      readonly name: string;
      readonly items: readonly Lang[];
      readonly end: Lang;
    }
  /**
   * `(items[0] | items[1] | …) next`, or `end` when given, printed as the rule
   * `name ::= end | items[0] next | items[1] next | …`: the right-recursive shape xgrammar masks
   * fast (the same as `loop`, but moving on to another rule). The automaton builds `next` once.
   */
  | {
      readonly kind: "step";
      readonly name: string;
      readonly items: readonly Lang[];
      readonly next: Lang;
      readonly end: Lang | undefined;
    };

export const lit = (text: string): Lang => ({ kind: "lit", text });
export const bytes = (...ranges: (readonly [number, number])[]): Lang => ({
  kind: "bytes",
  ranges,
});
export const seq = (...items: Lang[]): Lang => ({ kind: "seq", items });
export const alt = (...items: Lang[]): Lang => ({ kind: "alt", items });
export const opt = (item: Lang): Lang => ({ kind: "rep", item, min: 0, max: 1 });
export const star = (item: Lang): Lang => ({ kind: "rep", item, min: 0, max: Infinity });
export const rep = (item: Lang, min: number, max: number): Lang => ({
  kind: "rep",
  item,
  min,
  max,
});
export const rule = (name: string, body: Lang): Lang => ({ kind: "rule", name, body });
/**
 * Any number of `items`, then `end`, as one right-recursive rule. Why not `star`: xgrammar masks
 * a starred alternation inside a rule slowly at a real vocabulary size (40-60 ms per mask inside
 * a JSON string at 32,064 tokens, bench/constrained.ts), and the right-recursive form of the same
 * language, the one xgrammar's own JSON grammar uses for strings, in about 0.1 ms.
 */
export const loop = (name: string, items: Lang[], end: Lang): Lang => ({
  kind: "loop",
  name,
  items,
  end,
});

/** One of `items` then `next`, or `end`, as one right-recursive rule (see the `step` node). */
export const step = (name: string, items: Lang[], next: Lang, end?: Lang): Lang => ({
  kind: "step",
  name,
  items,
  next,
  end,
});

/** Well-formed UTF-8 of a non-ASCII code point (Unicode Table 3-7). */
const UTF8_MULTIBYTE: Lang = alt(
  seq(bytes([0xc2, 0xdf]), bytes([0x80, 0xbf])),
  seq(bytes([0xe0, 0xe0]), bytes([0xa0, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xe1, 0xec]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xed, 0xed]), bytes([0x80, 0x9f]), bytes([0x80, 0xbf])),
  seq(bytes([0xee, 0xef]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xf0, 0xf0]), bytes([0x90, 0xbf]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xf1, 0xf3]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xf4, 0xf4]), bytes([0x80, 0x8f]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
);

/** A character allowed unescaped inside a JSON string: anything but `"`, `\` and U+0000..U+001F. */
export const JSON_STRING_CHAR: Lang = {
  kind: "char",
  ebnf: '[^"\\\\\\u0000-\\u001f]',
  bytes: alt(bytes([0x20, 0x21], [0x23, 0x5b], [0x5d, 0x7f]), UTF8_MULTIBYTE),
};

// ---------------------------------------------------------------------------------------------
// EBNF (xgrammar's dialect)
// ---------------------------------------------------------------------------------------------

function ebnfLiteral(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (cp < 0x20 || cp === 0x7f) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** xgrammar reads `\x` escapes greedily (`\x5cbf` is U+5CBF), so bytes are written as `\uHHHH`,
 * which has a fixed length. */
function ebnfByte(b: number): string {
  const ch = String.fromCharCode(b);
  if (/[A-Za-z0-9]/.test(ch)) return ch;
  return `\\u${b.toString(16).padStart(4, "0")}`;
}

/** Prints `root` and every named rule it uses as an EBNF grammar whose start rule is `root`. */
export function toEbnf(root: Lang): string {
  const rules = new Map<string, string>();
  const print = (node: Lang): string => {
    switch (node.kind) {
      case "lit":
        return ebnfLiteral(node.text);
      case "bytes":
        for (const [, hi] of node.ranges) {
          if (hi > 0x7f) throw new Error("EBNF byte classes must be ASCII; use a char node");
        }
        return `[${node.ranges.map(([lo, hi]) => (lo === hi ? ebnfByte(lo) : `${ebnfByte(lo)}-${ebnfByte(hi)}`)).join("")}]`;
      case "char":
        return node.ebnf;
      case "seq":
        return node.items.length === 0 ? '""' : `(${node.items.map(print).join(" ")})`;
      case "alt":
        return `(${node.items.map(print).join(" | ")})`;
      case "rep": {
        const inner = print(node.item);
        if (node.min === 0 && node.max === 1) return `${inner}?`;
        if (node.min === 0 && node.max === Infinity) return `${inner}*`;
        if (node.min === 1 && node.max === Infinity) return `${inner}+`;
        return `${inner}{${node.min},${node.max === Infinity ? "" : node.max}}`;
      }
      case "rule": {
        const existing = rules.get(node.name);
        if (existing === undefined) {
          rules.set(node.name, ""); // reserve first: rules may be shared
          rules.set(node.name, print(node.body));
        }
        return node.name;
      }
      case "loop": {
        if (!rules.has(node.name)) {
          rules.set(node.name, ""); // reserve first: the rule refers to itself
          // Top-level sequences unparenthesized: `"\\" (escape) name`, as xgrammar's JSON grammar.
          const unwrap = (item: Lang): string =>
            item.kind === "seq" && item.items.length > 0
              ? item.items.map(print).join(" ")
              : print(item);
          const tails = node.items.map((item) => `${unwrap(item)} ${node.name}`);
          rules.set(node.name, [unwrap(node.end), ...tails].join(" | "));
        }
        return node.name;
      }
      case "step": {
        if (!rules.has(node.name)) {
          rules.set(node.name, "");
          const unwrap = (item: Lang): string =>
            item.kind === "seq" && item.items.length > 0
              ? item.items.map(print).join(" ")
              : print(item);
          const next = print(node.next);
          const tails = node.items.map((item) => `${unwrap(item)} ${next}`);
          rules.set(node.name, [...(node.end ? [unwrap(node.end)] : []), ...tails].join(" | "));
        }
        return node.name;
      }
    }
  };
  const rootText = print(root);
  const lines = [`root ::= ${rootText}`];
  for (const [name, body] of rules) lines.push(`${name} ::= ${body}`);
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------
// Byte-level NFA
// ---------------------------------------------------------------------------------------------

interface ByteEdge {
  lo: number;
  hi: number;
  to: number;
}

/** A state set: sorted, epsilon-closed NFA state ids. */
export type StateSet = readonly number[];

export class ByteNfa {
  /** Built with arrays, then packed (below) and emptied. */
  private eps: number[][] = [];
  private edges: ByteEdge[][] = [];
  /** The packed automaton (CSR): a large schema's automaton is a handful of typed arrays, not
   * hundreds of thousands of small objects for the garbage collector to walk on every major GC
   * (which showed as 20-80 ms pauses per token before). */
  private readonly size: number;
  private readonly epsStart: Int32Array;
  private readonly epsTo: Int32Array;
  private readonly edgeStart: Int32Array;
  private readonly edgeLo: Uint8Array;
  private readonly edgeHi: Uint8Array;
  private readonly edgeTo: Int32Array;
  /** Visit marks for closures (a stamp per call instead of a Set). */
  private readonly mark: Int32Array;
  private stamp = 0;
  private readonly start: number;
  private readonly accept: number;
  /** Bytes from each state to the accept state along the shortest path. */
  private readonly dist: Int32Array;
  /** The shortest path's next step from each state: a byte (or -1 for epsilon) and the target. */
  private readonly nextByte: Int32Array;
  private readonly nextState: Int32Array;

  constructor(root: Lang) {
    this.start = this.newState();
    this.accept = this.newState();
    this.build(root, this.start, this.accept);
    const n = this.eps.length;
    this.size = n;
    this.epsStart = new Int32Array(n + 1);
    this.edgeStart = new Int32Array(n + 1);
    for (let s = 0; s < n; s++) {
      this.epsStart[s + 1] = (this.epsStart[s] as number) + (this.eps[s] as number[]).length;
      this.edgeStart[s + 1] = (this.edgeStart[s] as number) + (this.edges[s] as ByteEdge[]).length;
    }
    this.epsTo = Int32Array.from(this.eps.flat());
    const all = this.edges.flat();
    this.edgeLo = Uint8Array.from(all, (e) => e.lo);
    this.edgeHi = Uint8Array.from(all, (e) => e.hi);
    this.edgeTo = Int32Array.from(all, (e) => e.to);
    this.eps = [];
    this.edges = [];
    this.mark = new Int32Array(n);
    [this.dist, this.nextByte, this.nextState] = this.shortestPaths();
  }

  get stateCount(): number {
    return this.size;
  }

  initial(): StateSet {
    return this.closure([this.start]);
  }

  /** The set after reading `input`, or undefined when `input` leaves the language's prefixes. */
  advance(set: StateSet, input: Uint8Array): StateSet | undefined {
    let current = set;
    for (const b of input) {
      const next: number[] = [];
      for (const s of current) {
        const end = this.edgeStart[s + 1] as number;
        for (let e = this.edgeStart[s] as number; e < end; e++) {
          if (b >= (this.edgeLo[e] as number) && b <= (this.edgeHi[e] as number)) {
            next.push(this.edgeTo[e] as number);
          }
        }
      }
      if (next.length === 0) return undefined;
      current = this.closure(next);
    }
    return current;
  }

  isComplete(set: StateSet): boolean {
    return set.includes(this.accept);
  }

  /** Whether nothing may follow: complete and no byte can extend it. */
  isFinal(set: StateSet): boolean {
    return this.isComplete(set) && set.every((s) => this.edgeStart[s] === this.edgeStart[s + 1]);
  }

  /** The state of `set` closest to the end (ties: the lowest id), which fixes the completion. */
  closestState(set: StateSet): number {
    let best = -1;
    for (const s of set) {
      const d = this.dist[s] ?? -1;
      if (d < 0) continue;
      if (best < 0 || d < (this.dist[best] ?? 0)) best = s;
    }
    if (best < 0) throw new Error("state set cannot reach the end of the language");
    return best;
  }

  /** The shortest byte string that completes the language from `state`. */
  completionFrom(state: number): Uint8Array {
    const out: number[] = [];
    let s = state;
    while (s !== this.accept) {
      const b = this.nextByte[s] ?? -1;
      if (b >= 0) out.push(b);
      s = this.nextState[s] ?? this.accept;
    }
    return Uint8Array.from(out);
  }

  private newState(): number {
    this.eps.push([]);
    this.edges.push([]);
    return this.eps.length - 1;
  }

  private epsilon(from: number, to: number): void {
    this.eps[from]?.push(to);
  }

  /** Thompson construction of `node` between the existing states `from` and `to`. */
  private build(node: Lang, from: number, to: number): void {
    switch (node.kind) {
      case "lit": {
        const data = new TextEncoder().encode(node.text);
        let s = from;
        for (const b of data) {
          const t = this.newState();
          this.edges[s]?.push({ lo: b, hi: b, to: t });
          s = t;
        }
        this.epsilon(s, to);
        return;
      }
      case "bytes":
        for (const [lo, hi] of node.ranges) this.edges[from]?.push({ lo, hi, to });
        return;
      case "char":
        this.build(node.bytes, from, to);
        return;
      case "rule":
        this.build(node.body, from, to);
        return;
      case "loop": {
        const head = this.newState();
        this.epsilon(from, head);
        for (const item of node.items) {
          const back = this.newState();
          this.build(item, head, back);
          this.epsilon(back, head);
        }
        this.build(node.end, head, to);
        return;
      }
      case "step": {
        const mid = this.newState();
        for (const item of node.items) this.build(item, from, mid);
        this.build(node.next, mid, to);
        if (node.end) this.build(node.end, from, to);
        return;
      }
      case "seq": {
        let s = from;
        for (const item of node.items) {
          const t = this.newState();
          this.build(item, s, t);
          s = t;
        }
        this.epsilon(s, to);
        return;
      }
      case "alt":
        for (const item of node.items) this.build(item, from, to);
        return;
      case "rep": {
        let s = from;
        for (let i = 0; i < node.min; i++) {
          const t = this.newState();
          this.build(node.item, s, t);
          s = t;
        }
        if (node.max === Infinity) {
          const loop = this.newState();
          this.epsilon(s, loop);
          const back = this.newState();
          this.build(node.item, loop, back);
          this.epsilon(back, loop);
          this.epsilon(loop, to);
          return;
        }
        for (let i = node.min; i < node.max; i++) {
          this.epsilon(s, to);
          const t = this.newState();
          this.build(node.item, s, t);
          s = t;
        }
        this.epsilon(s, to);
        return;
      }
    }
  }

  private closure(states: readonly number[]): StateSet {
    const stamp = ++this.stamp;
    const out: number[] = [];
    const stack = [...states];
    while (stack.length > 0) {
      const s = stack.pop() as number;
      if (this.mark[s] === stamp) continue;
      this.mark[s] = stamp;
      out.push(s);
      const end = this.epsStart[s + 1] as number;
      for (let e = this.epsStart[s] as number; e < end; e++) stack.push(this.epsTo[e] as number);
    }
    return out.sort((a, b) => a - b);
  }

  /** 0-1 BFS backwards from the accept state: epsilon costs 0, a byte costs 1. */
  private shortestPaths(): [Int32Array, Int32Array, Int32Array] {
    const n = this.size;
    const reverse: { from: number; byte: number }[][] = Array.from({ length: n }, () => []);
    for (let s = 0; s < n; s++) {
      for (let e = this.epsStart[s] as number; e < (this.epsStart[s + 1] as number); e++) {
        reverse[this.epsTo[e] as number]?.push({ from: s, byte: -1 });
      }
      for (let e = this.edgeStart[s] as number; e < (this.edgeStart[s + 1] as number); e++) {
        reverse[this.edgeTo[e] as number]?.push({ from: s, byte: this.edgeLo[e] as number });
      }
    }
    const dist = new Int32Array(n).fill(-1);
    const nextByte = new Int32Array(n).fill(-1);
    const nextState = new Int32Array(n).fill(-1);
    const done = new Uint8Array(n);
    const tentative = new Int32Array(n).fill(2 ** 30);
    tentative[this.accept] = 0;
    const deque: number[] = [this.accept];
    while (deque.length > 0) {
      const s = deque.shift() as number;
      if (done[s]) continue;
      done[s] = 1;
      dist[s] = tentative[s] ?? 0;
      for (const { from, byte } of reverse[s] ?? []) {
        const d = (dist[s] ?? 0) + (byte < 0 ? 0 : 1);
        if (done[from] || d >= (tentative[from] ?? 0)) continue;
        tentative[from] = d;
        nextByte[from] = byte;
        nextState[from] = s;
        if (byte < 0) deque.unshift(from);
        else deque.push(from);
      }
    }
    return [dist, nextByte, nextState];
  }
}
