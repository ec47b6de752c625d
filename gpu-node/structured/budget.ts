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
import type { ByteNfa, StateSet } from "./language.ts";

/** The bytes each token id writes into the text (undefined or empty: never part of it). Phi-3's
 * `Vocabulary` and Hermes's GGUF vocabulary both have this shape. */
export interface TokenBytes {
  readonly bytes: readonly (Uint8Array | undefined)[];
}

interface TrieNode {
  children: Map<number, TrieNode>;
  /** A token whose bytes end here (the lowest id when several do). */
  token: number;
}

export interface ClosingPlan {
  /** Token ids that complete the object from here. */
  tokens: number[];
}

export class BudgetPlanner {
  private readonly root: TrieNode = { children: new Map(), token: -1 };
  private readonly plans = new Map<number, ClosingPlan>();

  constructor(
    private readonly nfa: ByteNfa,
    vocabulary: TokenBytes,
  ) {
    vocabulary.bytes.forEach((bytes, id) => {
      if (bytes === undefined || bytes.length === 0) return;
      let node = this.root;
      for (const b of bytes) {
        let child = node.children.get(b);
        if (!child) {
          child = { children: new Map(), token: -1 };
          node.children.set(b, child);
        }
        node = child;
      }
      if (node.token < 0) node.token = id;
    });
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
    for (let i = n - 1; i >= 0; i--) {
      let node: TrieNode | undefined = this.root;
      for (let j = i; j < n && node; j++) {
        node = node.children.get(text[j] as number);
        if (node && node.token >= 0) {
          const c = 1 + (best[j + 1] as number);
          if (c < (best[i] as number)) {
            best[i] = c;
            choice[i] = node.token;
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
