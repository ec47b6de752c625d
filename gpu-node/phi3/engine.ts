/**
 * Our generation loop (onnxruntime-genai has no Node binding): chat template, tokenize, prefill,
 * then decode token by token with the KV cache, each step masked by xgrammar and kept within
 * the token budget by the planner, so every result is a valid trade proposal by construction.
 */
import { randomInt } from "node:crypto";
import { TradeProposal } from "../contract/index.ts";
import {
  type GenerationTimings,
  GpuNodeError,
  type Phi3GenerateInput,
  type Phi3Result,
} from "../runtime.ts";
import type { BudgetPlanner } from "../structured/budget.ts";
import { budgetTooSmall } from "../structured/index.ts";
import type { ByteNfa, StateSet } from "../structured/language.ts";
import type { KvCache, OnnxDecoder } from "./decoder.ts";
import type { Phi3ModelConfig } from "./folder.ts";
import { createStepSampler, mulberry32 } from "./sampler.ts";
import type { ChatFormatter, PromptTokenizer, Vocabulary } from "./vocab.ts";
import { bitmaskAllows, type CompiledGrammar, type XGrammar } from "./xgrammar.ts";

/** How often a step may refuse a sampled token (it would not leave room to close) before the
 * loop closes the object along the plan instead. */
const MAX_REFUSALS_PER_STEP = 16;

export interface GenerateOptions {
  /** false: no grammar mask and no budget plan, stop at an EOS id or the budget (for the
   * benchmark's comparison; the result may not be JSON). Default true. */
  constrained?: boolean;
  /** false: recompute the whole sequence every step instead of using the KV cache (tests
   * compare both). Default true. */
  kvCache?: boolean;
}

export interface RawGeneration {
  /** The generated text (the optional leading space dropped when constrained). */
  raw: string;
  tokens: number[];
  finishReason: "stop" | "length";
  usage: { prompt_tokens: number; completion_tokens: number };
  timings: GenerationTimings;
}

export interface EngineParts {
  config: Phi3ModelConfig;
  decoder: OnnxDecoder;
  chat: ChatFormatter;
  tokenizer: PromptTokenizer;
  vocabulary: Vocabulary;
  xgrammar: XGrammar;
  grammar: CompiledGrammar;
  nfa: ByteNfa;
  planner: BudgetPlanner;
}

/** A FIFO lock whose waiters can give up through their signal. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async lock(signal: AbortSignal): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.tail;
    this.tail = previous.then(() => mine);
    if (signal.aborted) {
      release();
      throw signal.reason;
    }
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        previous,
        new Promise<never>((_, reject) => {
          onAbort = () => reject(signal.reason);
          signal.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
    } catch (error) {
      // Our turn is skipped once the previous holder finishes.
      previous.then(release, release);
      throw error;
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
    return release;
  }
}

export class Phi3Engine {
  private readonly mutex = new Mutex();
  private readonly stopIds: ReadonlySet<number>;
  private readonly textLimit: number;

  constructor(private readonly parts: EngineParts) {
    this.stopIds = new Set(parts.config.eosIds);
    // Ids past the tokenizer's vocabulary are padding of the logits, never chosen.
    this.textLimit = parts.vocabulary.tokens.reduce((max, t, id) => (t === "" ? max : id + 1), 0);
  }

  /** Resolves when no generation runs (waits for the one in flight). */
  async idle(): Promise<void> {
    const release = await this.mutex.lock(new AbortController().signal);
    release();
  }

  /** The fewest tokens any valid proposal needs (the smallest usable max_length). */
  minimumTokens(): number {
    return this.parts.planner.cost(this.parts.nfa.initial());
  }

  /** Formats and tokenizes a prompt as the model will see it. */
  promptTokens(prompt: string): number[] {
    return this.parts.tokenizer.encode(this.parts.chat.format(prompt));
  }

  async generate(input: Phi3GenerateInput, signal: AbortSignal): Promise<Phi3Result> {
    // Another schema's text is not a proposal: those callers use run() (generateRaw/generateJson).
    if (input.constraint)
      throw new Error("generate() is for trade proposals; use run() with a constraint");
    const result = await this.run(input, signal, {});
    const proposal = TradeProposal.parse(JSON.parse(result.raw));
    return {
      proposal,
      raw: result.raw,
      finishReason: result.finishReason,
      usage: result.usage,
      timings: result.timings,
    };
  }

  async run(
    input: Phi3GenerateInput,
    signal: AbortSignal,
    options: GenerateOptions,
  ): Promise<RawGeneration> {
    const release = await this.mutex.lock(signal);
    try {
      return await this.runLocked(input, signal, options);
    } finally {
      release();
    }
  }

  private async runLocked(
    input: Phi3GenerateInput,
    signal: AbortSignal,
    options: GenerateOptions,
  ): Promise<RawGeneration> {
    const { config, decoder, vocabulary, xgrammar } = this.parts;
    // The trade schema's grammar unless the request brings its own (structured output).
    const { nfa, planner, grammar } = input.constraint ?? this.parts;
    const constrained = options.constrained ?? true;
    const useCache = options.kvCache ?? true;
    const budget = input.maxTokens;
    signal.throwIfAborted();

    const started = performance.now();
    const prompt = this.promptTokens(input.prompt);
    if (prompt.length + budget > config.contextLength) {
      throw new GpuNodeError(
        "prompt_too_long",
        400,
        `the prompt is ${prompt.length} tokens; with max_length ${budget} that exceeds the model's context of ${config.contextLength} tokens: shorten the prompt or lower max_length`,
        { prompt_tokens: prompt.length, context_length: config.contextLength, max_length: budget },
      );
    }
    let state: StateSet = nfa.initial();
    if (constrained) {
      const minimum = planner.cost(state);
      if (minimum > budget) {
        if (input.constraint) throw budgetTooSmall(budget, minimum);
        throw new GpuNodeError(
          "budget_too_small",
          422,
          `max_length ${budget} is too small: the shortest valid proposal needs ${minimum} tokens`,
          { min_max_length: minimum },
        );
      }
    }

    const temperature = input.sampling?.temperature ?? 0;
    const params = { temperature, topP: input.sampling?.top_p ?? 1 };
    const random = mulberry32(input.sampling?.seed ?? randomInt(2 ** 32));
    const matcher = constrained
      ? await xgrammar.GrammarMatcher.createGrammarMatcher(grammar)
      : undefined;
    const generated: number[] = [];
    const text: Uint8Array[] = [];
    let finishReason: "stop" | "length" = "length";
    let cache: KvCache = decoder.emptyCache();
    let promptMs = 0;
    try {
      let logits = await decoder.forward(prompt, cache);
      promptMs = performance.now() - started;
      for (;;) {
        signal.throwIfAborted();
        const remaining = budget - generated.length;
        if (constrained && matcher) {
          if (nfa.isFinal(state)) {
            finishReason = "stop";
            break;
          }
          const cost = planner.cost(state);
          let chosen: { id: number; next: StateSet } | undefined;
          let ended = false;
          if (cost < remaining) {
            const mask = await matcher.getNextTokenBitmask();
            const sampler = createStepSampler(
              logits,
              this.textLimit,
              (id) => bitmaskAllows(mask, id),
              params,
              random,
            );
            for (let tries = 0; tries < MAX_REFUSALS_PER_STEP && !chosen && !ended; tries++) {
              const id = sampler.next();
              if (id === undefined) break;
              // An end-of-text id where the value may end (xgrammar allows it only there; e.g.
              // after a number at the root, which could go on): the model chose to stop.
              if (this.stopIds.has(id) && nfa.isComplete(state)) ended = true;
              const bytes = vocabulary.bytes[id];
              const next = bytes && nfa.advance(state, bytes);
              // Keep room to close: after this token, the plan must fit in what is left.
              if (next && planner.cost(next) <= remaining - 1) chosen = { id, next };
            }
          }
          if (ended) {
            finishReason = "stop";
            break;
          }
          if (!chosen) {
            // Out of room (or out of luck): finish along the plan; it fits by the invariant.
            for (const id of planner.plan(state).tokens) {
              if (!matcher.acceptToken(id)) throw new Error(`grammar refused planned token ${id}`);
              generated.push(id);
              text.push(vocabulary.bytes[id] as Uint8Array);
            }
            break;
          }
          if (!matcher.acceptToken(chosen.id)) {
            throw new Error(`grammar refused token ${chosen.id} it allowed`);
          }
          state = chosen.next;
          generated.push(chosen.id);
          text.push(vocabulary.bytes[chosen.id] as Uint8Array);
          if (nfa.isFinal(state)) {
            finishReason = "stop";
            break;
          }
        } else {
          const id = createStepSampler(logits, this.textLimit, undefined, params, random).next();
          if (id === undefined || this.stopIds.has(id)) {
            finishReason = "stop";
            break;
          }
          generated.push(id);
          text.push(vocabulary.bytes[id] ?? new Uint8Array(0));
        }
        if (generated.length >= budget) break;
        if (useCache) {
          logits = await decoder.forward([generated[generated.length - 1] as number], cache);
        } else {
          cache = decoder.emptyCache();
          logits = await decoder.forward([...prompt, ...generated], cache);
        }
      }
    } finally {
      matcher?.dispose();
      for (const tensor of Object.values(cache.past)) tensor.dispose();
    }
    const bytes = Buffer.concat(text);
    let raw = new TextDecoder().decode(bytes);
    if (constrained && raw.startsWith(" ")) raw = raw.slice(1);
    const finished = performance.now();
    return {
      raw,
      tokens: generated,
      finishReason,
      usage: { prompt_tokens: prompt.length, completion_tokens: generated.length },
      timings: { prompt_ms: promptMs, generate_ms: finished - started - promptMs },
    };
  }
}
