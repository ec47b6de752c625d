/**
 * The output language (language.ts's AST) compiled into a byte-level NFA of our own, which plans
 * the token budget: the shortest way to finish from wherever the output is.
 */
import type { Lang } from "./language.ts";

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
