/**
 * Token-budget planning: how many tokens the output needs, at least, to end as a valid value
 * from where it is now, and which tokens do that.
 *
 * The cost of a position is the token count of one concrete plan: the shortest byte completion
 * from the closest NFA state, split into the fewest vocabulary tokens (a dynamic program over a
 * byte trie of the vocabulary). Every token of such a plan is acceptable to xgrammar, since its
 * bytes keep the text a prefix of the language. The generation loop keeps `cost <= tokens left`
 * after every token it picks; when that would break, it emits the plan and stops, so the object
 * always closes within `max_length`.
 */
import type { ByteNfa, StateSet } from "./byte-nfa.ts";

/** The bytes each token id writes into the text (undefined or empty: never part of it). Phi-3's
 * `Vocabulary` and Hermes's GGUF vocabulary both have this shape. */
export interface TokenBytes {
  readonly bytes: readonly (Uint8Array | undefined)[];
}

export interface ClosingPlan {
  /** Token ids that complete the value from here. */
  tokens: number[];
}

/**
 * A byte trie of the vocabulary, packed into typed arrays (a trie of Map nodes is some 100,000
 * objects at 32k tokens, which every major garbage collection walks). Node 0 is the root; a
 * node's children are `childByte/childNode[childStart[node] .. childStart[node + 1])`, sorted by
 * byte; `token[node]` is the lowest id whose bytes end there, or -1.
 */
class PackedTrie {
  readonly childStart: Int32Array;
  readonly childByte: Uint8Array;
  readonly childNode: Int32Array;
  readonly token: Int32Array;

  constructor(vocabulary: TokenBytes) {
    const children: Map<number, number>[] = [new Map()];
    const tokens: number[] = [-1];
    vocabulary.bytes.forEach((bytes, id) => {
      if (bytes === undefined || bytes.length === 0) return;
      let node = 0;
      for (const b of bytes) {
        let child = children[node]?.get(b);
        if (child === undefined) {
          child = children.length;
          children.push(new Map());
          tokens.push(-1);
          children[node]?.set(b, child);
        }
        node = child;
      }
      if ((tokens[node] as number) < 0) tokens[node] = id;
    });
    const n = children.length;
    this.childStart = new Int32Array(n + 1);
    let total = 0;
    for (let i = 0; i < n; i++) {
      this.childStart[i] = total;
      total += (children[i] as Map<number, number>).size;
    }
    this.childStart[n] = total;
    this.childByte = new Uint8Array(total);
    this.childNode = new Int32Array(total);
    for (let i = 0; i < n; i++) {
      const sorted = [...(children[i] as Map<number, number>)].sort((a, b) => a[0] - b[0]);
      let k = this.childStart[i] as number;
      for (const [b, child] of sorted) {
        this.childByte[k] = b;
        this.childNode[k++] = child;
      }
    }
    this.token = Int32Array.from(tokens);
  }

  /** The child of `node` for byte `b`, or -1 (binary search over its sorted children). */
  child(node: number, b: number): number {
    let lo = this.childStart[node] as number;
    let hi = (this.childStart[node + 1] as number) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.childByte[mid] as number;
      if (at === b) return this.childNode[mid] as number;
      if (at < b) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}

export class BudgetPlanner {
  private readonly trie: PackedTrie;
  private readonly plans = new Map<number, ClosingPlan>();

  constructor(
    private readonly nfa: ByteNfa,
    vocabulary: TokenBytes,
  ) {
    this.trie = new PackedTrie(vocabulary);
  }

  /** The plan that completes the object from `set` (cached per NFA state). */
  plan(set: StateSet): ClosingPlan {
    const state = this.nfa.closestState(set);
    let plan = this.plans.get(state);
    if (!plan) {
      plan = { tokens: this.segment(this.nfa.completionFrom(state)) };
      this.plans.set(state, plan);
    }
    return plan;
  }

  cost(set: StateSet): number {
    return this.plan(set).tokens.length;
  }

  /** Fewest vocabulary tokens whose bytes concatenate to `text`. */
  segment(text: Uint8Array): number[] {
    const n = text.length;
    const best = new Int32Array(n + 1).fill(2 ** 30);
    const choice = new Int32Array(n + 1).fill(-1);
    const length = new Int32Array(n + 1);
    best[n] = 0;
    const trie = this.trie;
    for (let i = n - 1; i >= 0; i--) {
      let node = 0;
      for (let j = i; j < n; j++) {
        node = trie.child(node, text[j] as number);
        if (node < 0) break;
        const token = trie.token[node] as number;
        if (token >= 0) {
          const c = 1 + (best[j + 1] as number);
          if (c < (best[i] as number)) {
            best[i] = c;
            choice[i] = token;
            length[i] = j + 1 - i;
          }
        }
      }
    }
    if ((best[0] as number) >= 2 ** 30) {
      throw new Error("the vocabulary cannot spell the closing text (no byte fallback?)");
    }
    const tokens: number[] = [];
    for (let i = 0; i < n; i += length[i] as number) tokens.push(choice[i] as number);
    return tokens;
  }
}
