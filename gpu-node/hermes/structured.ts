/**
 * Structured output on Hermes: token-level constrained decoding on the GGUF's own vocabulary
 * with the same grammar and budget planner as Phi-3 (gpu-node/structured/).
 *
 * Why not node-llama-cpp's own grammar support (llama.cpp GBNF through `LlamaGrammar`): its
 * grammar sampler only says which tokens may come next; it cannot refuse a token that would leave
 * too little room to close the value, and it cannot close the value along a plan when the budget
 * runs out, so at `max_tokens` it returns cut JSON. Here each step is:
 *
 * 1. xgrammar's bitmask for the next token, computed on an xgrammar TokenizerInfo built from the
 *    GGUF's token list (`tokenizer.ggml.tokens`: "llama" vocabularies as byte_fallback, "gpt2"
 *    ones as byte_level; control, unknown, unused and user-defined tokens are never allowed);
 * 2. one `LlamaContextSequence.controlledEvaluate` of the previous token that samples the next one
 *    with the model's own sampler (temperature, top_p, seeded) under a token bias that carries
 *    the mask: +1000 logits on the allowed tokens when they are the smaller side (every other
 *    token then has probability 0 after the softmax; a constant shift does not change the
 *    allowed tokens' distribution), or "never" on the disallowed ones when those are fewer;
 * 3. the planner's check on the drawn token (after it, the closing plan must fit in what is left).
 *    A token the check refuses (or an end-of-generation token, which node-llama-cpp's bias
 *    cannot ban) is banned and the step is sampled again: the last token is erased from the
 *    sequence and evaluated once more. After MAX_REFUSALS refusals, or when no room is left, the
 *    plan's tokens are written (no forward pass needed) and the value is closed.
 *
 * Every token is also fed to our byte automaton, so the text is a prefix of the language at every
 * step and the result parses to a value the schema accepts, within `max_tokens`.
 */
import { randomInt } from "node:crypto";
import type {
  GgufFileInfo,
  LlamaContextSequence,
  LlamaModel,
  Token,
  TokenBias,
} from "node-llama-cpp";
import { ServiceError } from "../contract/errors.ts";
import { mulberry32 } from "../phi3/sampler.ts";
import {
  bitmaskAllows,
  loadXGrammar,
  type TokenizerInfo,
  type XGrammar,
} from "../phi3/xgrammar.ts";
import type { GenerateControl, JsonGenerateInput, JsonResult } from "../runtime.ts";
import {
  budgetTooSmall,
  type Constraint,
  ConstraintCache,
  type ConstraintLease,
} from "../structured/index.ts";
import { type GgufVocabulary, ggufVocabulary } from "./gguf-vocabulary.ts";
import { maskBias, textTokenWords } from "./token-bias.ts";

/** Refused draws per step before the value is closed along the plan. Each costs a forward pass
 * of one token (the step is evaluated again), so fewer than Phi-3's 16. */
const MAX_REFUSALS = 4;

export interface StructuredSampling {
  temperature?: number;
  top_p?: number;
  seed?: number;
}

/** One model's structured-output state: xgrammar's view of its vocabulary and the cache of
 * compiled schemas. Created once per loaded model (lazily, on the first JSON request). */
export class HermesStructured {
  private constructor(
    private readonly model: LlamaModel,
    private readonly xgrammar: XGrammar,
    private readonly info: TokenizerInfo,
    readonly vocabulary: GgufVocabulary,
    private readonly stopIds: ReadonlySet<number>,
    private readonly constraints: ConstraintCache,
  ) {
    this.textWords = textTokenWords(vocabulary.bytes);
  }

  private readonly textWords: Int32Array;

  static async create(model: LlamaModel, file: GgufFileInfo): Promise<HermesStructured> {
    const vocabulary = ggufVocabulary(file);
    const stopIds = vocabulary.controlIds.filter((id) => model.isEogToken(id as Token));
    const xgrammar = await loadXGrammar();
    const info = await xgrammar.TokenizerInfo.createTokenizerInfo(
      [...vocabulary.encoded],
      vocabulary.kind,
      false,
      vocabulary.encoded.length,
      stopIds,
    );
    const constraints = new ConstraintCache({ xgrammar, tokenizerInfo: info, vocabulary });
    return new HermesStructured(model, xgrammar, info, vocabulary, new Set(stopIds), constraints);
  }

  /** The compiled schema for this model (cached); throws invalid_schema/unsupported_schema. */
  lease(schema: unknown): Promise<ConstraintLease> {
    return this.constraints.lease(schema);
  }

  /** Throws 422 budget_too_small when `budget` is below the schema's minimum and 400
   * prompt_too_long when the prompt and the budget exceed the context (before any token). */
  check(promptTokens: number, contextSize: number, budget: number, constraint: Constraint): void {
    if (constraint.minTokens > budget) throw budgetTooSmall(budget, constraint.minTokens);
    if (promptTokens + budget > contextSize) {
      throw new ServiceError(
        "prompt_too_long",
        `The prompt is ${promptTokens} tokens and max_tokens asks for ${budget}: ${promptTokens + budget} exceeds the context of ${contextSize} tokens.`,
        { prompt_tokens: promptTokens, context_length: contextSize, max_length: budget },
      );
    }
  }

  /**
   * Generates one value on `sequence` (a pool sequence: the caller owns it and gives it back;
   * the prefix its cache shares with the prompt is kept). `check` first. Each piece of the JSON
   * text goes to `control.onText` as it is decided; aborting throws `control.aborted(tokens)`.
   */
  async generate(
    sequence: LlamaContextSequence,
    prompt: Token[],
    input: JsonGenerateInput,
    constraint: Constraint,
    control: GenerateControl & { aborted: (completionTokens: number) => Error },
  ): Promise<JsonResult> {
    const { nfa, planner, grammar } = constraint;
    const budget = input.maxTokens;
    const { signal } = control;
    this.check(prompt.length, sequence.contextSize, budget, constraint);
    if (signal.aborted) throw control.aborted(0);
    const random = mulberry32(input.sampling?.seed ?? randomInt(2 ** 32));
    const temperature = input.sampling?.temperature ?? 0;
    const topP = input.sampling?.top_p;
    const bytes = this.vocabulary.bytes;
    const started = performance.now();
    let promptMs: number | undefined;
    const generated: number[] = [];
    let finishReason: "stop" | "length" = "length";
    let state = nfa.initial();
    // The text streams as its tokens are decided; the value's optional leading space is not text.
    const decoder = new TextDecoder();
    let raw = "";
    const emit = (piece: string) => {
      const text = raw === "" && piece.startsWith(" ") ? piece.slice(1) : piece;
      if (text === "") return;
      raw += text;
      control.onText?.(text);
    };
    const write = (id: number) => {
      generated.push(id);
      emit(decoder.decode(bytes[id] as Uint8Array, { stream: true }));
    };
    // Keep the cached prefix; at least the prompt's last token is evaluated (for its logits).
    const keep = Math.min(
      sequence.compareContextTokens(prompt).firstDifferentIndex,
      prompt.length - 1,
    );
    if (sequence.nextTokenIndex > keep) {
      await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
    }
    const matcher = await this.xgrammar.GrammarMatcher.createGrammarMatcher(grammar);
    try {
      // The first step evaluates the prompt; later ones the token chosen before.
      let pending: Token[] = prompt.slice(keep);
      for (;;) {
        if (signal.aborted) throw control.aborted(generated.length);
        if (nfa.isFinal(state)) {
          finishReason = "stop";
          break;
        }
        const remaining = budget - generated.length;
        let chosen: { id: number; next: readonly number[] } | undefined;
        let ended = false;
        if (planner.cost(state) < remaining) {
          const mask = await matcher.getNextTokenBitmask();
          const allowed = (id: number) => bytes[id] !== undefined && bitmaskAllows(mask, id);
          const banned = new Set<number>();
          for (let tries = 0; tries <= MAX_REFUSALS && !chosen && !ended; tries++) {
            if (tries > 0) {
              // Sample the same step again: erase the last token and evaluate it once more.
              const end = sequence.nextTokenIndex;
              await sequence.eraseContextTokenRanges([{ start: end - 1, end }]);
              pending = [pending[pending.length - 1] as Token];
            }
            const id = await this.sampleNext(sequence, pending, {
              bias: maskBias(
                this.model.tokenizer,
                bytes.length,
                mask,
                this.textWords,
                banned,
                this.stopIds,
              ),
              temperature,
              topP,
              seed: Math.floor(random() * 2 ** 31),
            });
            promptMs ??= performance.now() - started;
            if (id === undefined) break;
            if (this.stopIds.has(id) && nfa.isComplete(state)) {
              ended = true;
              break;
            }
            const next = allowed(id) ? nfa.advance(state, bytes[id] as Uint8Array) : undefined;
            if (next && planner.cost(next) <= remaining - 1) chosen = { id, next };
            else banned.add(id);
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
            write(id);
          }
          break;
        }
        if (!matcher.acceptToken(chosen.id)) {
          throw new Error(`grammar refused token ${chosen.id} it allowed`);
        }
        state = chosen.next;
        write(chosen.id);
        pending = [chosen.id as Token];
        if (generated.length >= budget) break;
      }
    } finally {
      matcher.dispose();
    }
    emit(decoder.decode());
    const finished = performance.now();
    const prefill = promptMs ?? finished - started;
    return {
      json: JSON.parse(raw),
      raw,
      finishReason,
      usage: { prompt_tokens: prompt.length, completion_tokens: generated.length },
      timings: { prompt_ms: prefill, generate_ms: finished - started - prefill },
    };
  }

  private async sampleNext(
    sequence: LlamaContextSequence,
    pending: Token[],
    options: { bias: TokenBias; temperature: number; topP: number | undefined; seed: number },
  ): Promise<number | undefined> {
    const last = pending.length - 1;
    const input = pending.map((token, i) =>
      i < last
        ? token
        : ([
            token,
            {
              generateNext: {
                token: true,
                options: {
                  temperature: options.temperature,
                  ...(options.topP !== undefined ? { topP: options.topP } : {}),
                  seed: options.seed,
                  tokenBias: options.bias,
                },
              },
            },
          ] as const),
    );
    const out = await sequence.controlledEvaluate(
      input as Parameters<LlamaContextSequence["controlledEvaluate"]>[0],
    );
    const token = out[last]?.next.token;
    return token === null || token === undefined ? undefined : token;
  }

  dispose(): Promise<void> {
    return this.constraints.dispose().finally(() => this.info.dispose());
  }
}
