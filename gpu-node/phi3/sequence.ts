/**
 * One request's generation state inside the batched loop: its tokens, its grammar matcher and
 * budget planner position, its sampler and PRNG, and the text streamed so far. The engine feeds
 * it the logits of its next position; it picks the next token (grammar mask, sampler, budget
 * invariant), or finishes.
 */
import type { GenerateControl, Phi3Constraint, Phi3RawResult } from "../runtime.ts";
import type { StateSet } from "../structured/byte-nfa.ts";
import type { SamplingParams, TokenSampler } from "./sampler.ts";
import type { Vocabulary } from "./vocab.ts";
import type { GrammarMatcher, XGrammar } from "./xgrammar.ts";

/** How often a step may refuse a sampled token (it would not leave room to close) before the
 * loop closes the output along the plan instead. */
const MAX_REFUSALS_PER_STEP = 16;

/** What a finished sequence returns (the runtime's Phi3RawResult). */
export type RawGeneration = Phi3RawResult;

export interface SequenceSetup {
  prompt: number[];
  budget: number;
  /** Undefined: unconstrained (stop at an EOS id or the budget; benchmarks only). */
  constraint: Phi3Constraint | undefined;
  params: SamplingParams;
  random: () => number;
  control: GenerateControl;
  vocabulary: Vocabulary;
  /** Ids past the tokenizer are the logits' padding. */
  textLimit: number;
  stopIds: ReadonlySet<number>;
  /** Shared by the engine's sequences: each uses it only between one await and the next, so
   * its buffers (32,064 entries) are allocated once, not per request. */
  sampler: TokenSampler;
}

export class Sequence {
  readonly generated: number[] = [];
  private readonly stream = new TextDecoder();
  private state: StateSet | undefined;
  private streamed = "";
  private leadingChecked = false;
  private disposed = false;
  finishReason: "stop" | "length" = "length";
  readonly started = performance.now();
  promptMs = 0;

  private constructor(
    readonly setup: SequenceSetup,
    private readonly matcher: GrammarMatcher | undefined,
  ) {
    this.state = setup.constraint?.nfa.initial();
  }

  static async create(setup: SequenceSetup, xgrammar: XGrammar): Promise<Sequence> {
    const matcher = setup.constraint
      ? await xgrammar.GrammarMatcher.createGrammarMatcher(setup.constraint.grammar)
      : undefined;
    return new Sequence(setup, matcher);
  }

  get signal(): AbortSignal {
    return this.setup.control.signal;
  }

  /** Given the logits of the next position: the token to feed the model next, or undefined
   * when the output is complete (or out of budget). */
  async advance(logits: Float32Array): Promise<number | undefined> {
    const { budget, constraint, vocabulary, params, random, textLimit, stopIds } = this.setup;
    const remaining = budget - this.generated.length;
    if (remaining <= 0) return undefined;
    if (!constraint || !this.matcher || this.state === undefined) {
      this.setup.sampler.prepare(logits, textLimit, undefined, params, random);
      const id = this.setup.sampler.next();
      if (id === undefined || stopIds.has(id)) {
        this.finishReason = "stop";
        return undefined;
      }
      this.push(id, vocabulary.bytes[id] ?? new Uint8Array(0));
      return this.generated.length >= budget ? undefined : id;
    }
    const { nfa, planner } = constraint;
    const matcher = this.matcher;
    const state = this.state;
    let chosen: { id: number; next: StateSet } | undefined;
    if (planner.cost(state) < remaining) {
      const mask = await matcher.getNextTokenBitmask();
      this.setup.sampler.prepare(logits, textLimit, mask, params, random);
      for (let tries = 0; tries < MAX_REFUSALS_PER_STEP && !chosen; tries++) {
        const id = this.setup.sampler.next();
        if (id === undefined) break;
        if (stopIds.has(id)) {
          // An end-of-text id where the value may end (e.g. after a number at the root, which
          // could go on): the model chose to stop. Anywhere else it is refused.
          if (nfa.isComplete(state)) {
            this.finishReason = "stop";
            return undefined;
          }
          continue;
        }
        const bytes = vocabulary.bytes[id];
        const next = bytes && nfa.advance(state, bytes);
        // Keep room to close: after this token, the plan must fit in what is left.
        if (next && planner.cost(next) <= remaining - 1) chosen = { id, next };
      }
    }
    if (!chosen) {
      // Out of room (or out of luck): finish along the plan; it fits by the invariant.
      for (const id of planner.plan(state).tokens) {
        if (!matcher.acceptToken(id)) throw new Error(`grammar refused planned token ${id}`);
        this.push(id, vocabulary.bytes[id] as Uint8Array);
      }
      this.finishReason = "length";
      return undefined;
    }
    if (!matcher.acceptToken(chosen.id)) {
      throw new Error(`grammar refused token ${chosen.id} it allowed`);
    }
    this.state = chosen.next;
    this.push(chosen.id, vocabulary.bytes[chosen.id] as Uint8Array);
    if (nfa.isFinal(chosen.next)) {
      this.finishReason = "stop";
      return undefined;
    }
    return this.generated.length >= budget ? undefined : chosen.id;
  }

  private push(id: number, bytes: Uint8Array): void {
    this.generated.push(id);
    this.emit(this.stream.decode(bytes, { stream: true }));
  }

  /** Streams a piece of text; the constrained output's optional leading space is not text. */
  private emit(piece: string): void {
    let text = piece;
    if (!this.leadingChecked && text.length > 0) {
      this.leadingChecked = true;
      if (this.setup.constraint && text.startsWith(" ")) text = text.slice(1);
    }
    if (text.length === 0) return;
    this.streamed += text;
    this.setup.control.onText?.(text);
  }

  /** The result, once advance returned undefined. */
  finish(): RawGeneration {
    this.emit(this.stream.decode());
    this.discard();
    const finished = performance.now();
    return {
      raw: this.streamed,
      tokens: this.generated,
      finishReason: this.finishReason,
      usage: { prompt_tokens: this.setup.prompt.length, completion_tokens: this.generated.length },
      timings: { prompt_ms: this.promptMs, generate_ms: finished - this.started - this.promptMs },
    };
  }

  /** Frees the matcher of a sequence that will not finish (cancelled, failed). */
  discard(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.matcher?.dispose();
  }
}
