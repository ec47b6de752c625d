/**
 * The Hermes runtime's generation path: one llama.cpp context with a fixed pool of sequences,
 * one sequence per generation, batched by node-llama-cpp (every sequence that wants a token in
 * the same event-loop turn goes into one decode).
 *
 * The loop runs on `LlamaContextSequence.evaluate` with our own ChatML frame (chatml.ts), not a
 * chat session: no chat wrapper, history or per-token text triggers on the per-token path.
 * Sequences live as long as the runtime; a generation takes a free one (the one sharing the longest
 * prompt prefix, whose KV cache is kept) and gives it back synchronously when it ends, so a
 * sequence is never "not yet returned" (node-llama-cpp's dispose() hands it back later, behind a
 * lock that other sequences' decoding holds: `No sequences left`).
 */
import type {
  GgufFileInfo,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaModel,
  Token,
} from "node-llama-cpp";
import type { Logger } from "pino";
import { ServiceError } from "../contract/errors.ts";
import type {
  GenerateControl,
  HermesGenerateInput,
  HermesResult,
  HermesRuntime,
  JsonGenerateInput,
  JsonResult,
} from "../runtime.ts";
import { type ChatMlIds, chatMlTokens, chatTurns } from "./chatml.ts";
import { StopFilter } from "./stop.ts";
import { HermesStructured } from "./structured.ts";

/** Tokens detokenized together at most while waiting for a complete UTF-8 character. */
const MAX_PENDING_TOKENS = 4;
/** Generated tokens handed to the detokenizer as left context (spacing rules). */
const LAST_TOKENS = 4;

export interface LlamaHermesParts {
  llama: Llama;
  /** Whether dispose() also disposes `llama` (it was started for this runtime). */
  ownsLlama: boolean;
  model: LlamaModel;
  context: LlamaContext;
  ids: ChatMlIds<Token>;
  modelName: string;
  device: { kind: "cuda" | "cpu"; name?: string };
  log: Logger;
  /** The GGUF's metadata: its token list is structured output's view of the vocabulary. */
  file: GgufFileInfo;
}

export class LlamaHermesRuntime implements HermesRuntime, AsyncDisposable {
  readonly modelName: string;
  readonly device: { kind: "cuda" | "cpu"; name?: string };
  readonly parallel: number;
  readonly #parts: LlamaHermesParts;
  readonly #free: LlamaContextSequence[] = [];
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Per-token answers of the binding, memoized: each is a native call (about 6-15 µs) that
   * would otherwise run on every generated token. */
  readonly #eog = new Map<Token, boolean>();
  readonly #pieces = new Map<Token, string>();
  /** A plain-text token used as left context, so a token's text is its mid-text form. */
  readonly #textContext: Token[];
  #disposing: Promise<void> | undefined;
  /** Structured output (structured.ts), set up on the first JSON request. */
  #structured: Promise<HermesStructured> | undefined;

  constructor(parts: LlamaHermesParts) {
    this.#parts = parts;
    this.modelName = parts.modelName;
    this.device = parts.device;
    this.parallel = parts.context.totalSequences;
    for (let i = 0; i < this.parallel; i++) this.#free.push(parts.context.getSequence());
    this.#textContext = parts.model.tokenize("a", false, "trimLeadingSpace").slice(-1);
  }

  #isEnd(token: Token): boolean {
    let end = this.#eog.get(token);
    if (end === undefined) {
      end = token === this.#parts.ids.imEnd || this.#parts.model.isEogToken(token);
      this.#eog.set(token, end);
    }
    return end;
  }

  /** Text of generated tokens: a token's mid-text piece from the memo when it is whole UTF-8;
   * the first token of a generation and split characters go through the detokenizer. */
  #text(pending: Token[], generated: Token[]): string {
    const { model } = this.#parts;
    if (pending.length === 1 && generated.length > 1) {
      const token = pending[0] as Token;
      let piece = this.#pieces.get(token);
      if (piece === undefined) {
        piece = model.detokenize([token], false, this.#textContext);
        this.#pieces.set(token, piece);
      }
      if (!piece.endsWith("\uFFFD")) return piece;
    }
    const last = generated.slice(
      Math.max(0, generated.length - pending.length - LAST_TOKENS),
      generated.length - pending.length,
    );
    return model.detokenize(pending, false, last);
  }

  get disposed(): boolean {
    return this.#disposing !== undefined;
  }

  /** Context tokens each sequence holds (prompt + new tokens). */
  get contextSize(): number {
    return this.#parts.context.contextSize;
  }

  /** Prompt token ids as the model sees them (for tests and callers that check lengths). */
  promptTokens(input: Pick<HermesGenerateInput, "prompt" | "messages" | "systemPrompt">): Token[] {
    return chatMlTokens(this.#parts.model, this.#parts.ids, chatTurns(input));
  }

  generate(input: HermesGenerateInput, control: GenerateControl): Promise<HermesResult> {
    return this.#track(() => this.#generate(input, control));
  }

  /** Structured output for a schema of the subset: constrained decoding on a pool sequence. */
  generateJson(input: JsonGenerateInput, control: GenerateControl): Promise<JsonResult> {
    return this.#track(() => this.#generateJson(input, control));
  }

  /** Runs a generation unless disposing; dispose() waits for it. */
  #track<T>(start: () => Promise<T>): Promise<T> {
    if (this.#disposing) {
      return Promise.reject(
        new ServiceError("model_not_loaded", "Hermes has been unloaded.", { state: "disposed" }),
      );
    }
    const run = start();
    this.#inFlight.add(run);
    const forget = () => this.#inFlight.delete(run);
    run.then(forget, forget);
    return run;
  }

  async #generateJson(input: JsonGenerateInput, control: GenerateControl): Promise<JsonResult> {
    const { signal } = control;
    if (signal.aborted) throw abortError(signal, 0);
    if (!this.#structured) {
      const created = HermesStructured.create(this.#parts.model, this.#parts.file);
      this.#structured = created;
      created.catch(() => {
        if (this.#structured === created) this.#structured = undefined;
      });
    }
    const structured = await this.#structured;
    // Compiled (or refused) before a sequence is taken.
    const lease = await structured.lease(input.schema);
    try {
      const prompt = this.promptTokens({ ...input, systemPrompt: input.systemPrompt ?? "" });
      structured.check(prompt.length, this.contextSize, input.maxTokens, lease.constraint);
      const sequence = this.#take(prompt);
      try {
        return await structured.generate(sequence, prompt, input, lease.constraint, {
          signal,
          ...(control.onText ? { onText: control.onText } : {}),
          aborted: (tokens) => abortError(signal, tokens),
        });
      } finally {
        // Back in the pool before the caller (and the scheduler) hears that this one ended.
        this.#free.push(sequence);
      }
    } finally {
      lease.release();
    }
  }

  async #generate(input: HermesGenerateInput, control: GenerateControl): Promise<HermesResult> {
    const { signal } = control;
    if (signal.aborted) throw abortError(signal, 0);
    const prompt = this.promptTokens(input);
    const maxTokens = this.#budget(prompt.length, input);
    const sequence = this.#take(prompt);
    try {
      return await this.#run(sequence, prompt, maxTokens, input, control);
    } finally {
      // Back in the pool before the caller (and the scheduler) hears that this one ended.
      this.#free.push(sequence);
    }
  }

  /** New tokens allowed: maxTokens, shortened to the room left when the caller set minTokens. */
  #budget(promptTokens: number, input: HermesGenerateInput): number {
    const room = this.contextSize - promptTokens;
    if (input.minTokens !== undefined && input.minTokens <= room) {
      return Math.min(input.maxTokens, room);
    }
    if (input.maxTokens <= room) return input.maxTokens;
    throw new ServiceError(
      "prompt_too_long",
      `The prompt is ${promptTokens} tokens (with the chat template and system prompt) and max_length asks for ${input.maxTokens} new tokens: ${promptTokens + input.maxTokens} exceeds the context of ${this.contextSize} tokens. Shorten the prompt to at most ${Math.max(0, this.contextSize - input.maxTokens)} tokens or lower max_length.`,
      {
        prompt_tokens: promptTokens,
        context_length: this.contextSize,
        max_length: input.maxTokens,
      },
    );
  }

  /** The free sequence whose cache shares the longest prefix with the prompt. */
  #take(prompt: Token[]): LlamaContextSequence {
    let best = -1;
    let bestShared = -1;
    for (const [index, sequence] of this.#free.entries()) {
      const shared = sequence.compareContextTokens(prompt).firstDifferentIndex;
      if (shared > bestShared) {
        best = index;
        bestShared = shared;
      }
    }
    const [sequence] = best < 0 ? [] : this.#free.splice(best, 1);
    if (!sequence) {
      // The scheduler admits at most `parallel` generations; reaching this is a bug.
      throw new Error(`all ${this.parallel} Hermes sequences are busy`);
    }
    return sequence;
  }

  async #run(
    sequence: LlamaContextSequence,
    prompt: Token[],
    maxTokens: number,
    input: HermesGenerateInput,
    control: GenerateControl,
  ): Promise<HermesResult> {
    const { model } = this.#parts;
    const { signal, onText } = control;
    const started = performance.now();
    // Keep the cached prefix; at least the prompt's last token is evaluated (for its logits).
    const keep = Math.min(
      sequence.compareContextTokens(prompt).firstDifferentIndex,
      prompt.length - 1,
    );
    if (sequence.nextTokenIndex > keep) {
      await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
    }
    const sampling = input.sampling ?? {};
    const tokens = sequence.evaluate(prompt.slice(keep), {
      // 0 (the default) is greedy decoding.
      temperature: sampling.temperature ?? 0,
      ...(sampling.top_p !== undefined ? { topP: sampling.top_p } : {}),
      ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    });
    const stops = new StopFilter(input.stop);
    const generated: Token[] = [];
    let pending: Token[] = [];
    let text = "";
    let finishReason: HermesResult["finishReason"] = "length";
    let firstTokenAt: number | undefined;
    const emit = (piece: string) => {
      if (piece === "") return;
      text += piece;
      onText?.(piece);
    };
    try {
      while (generated.length < maxTokens) {
        const next = await tokens.next();
        if (signal.aborted) throw abortError(signal, generated.length);
        firstTokenAt ??= performance.now();
        if (next.done || this.#isEnd(next.value)) {
          finishReason = "stop";
          break;
        }
        generated.push(next.value);
        pending.push(next.value);
        const decoded = this.#text(pending, generated);
        // An incomplete UTF-8 character waits for the tokens that finish it.
        if (decoded.endsWith("\uFFFD") && pending.length < MAX_PENDING_TOKENS) continue;
        pending = [];
        emit(stops.push(decoded));
        if (stops.stopped) {
          finishReason = "stop";
          break;
        }
      }
    } finally {
      await tokens.return();
    }
    if (!stops.stopped) {
      if (pending.length > 0) emit(stops.push(model.detokenize(pending, false)));
      emit(stops.flush());
    }
    const finished = performance.now();
    const firstAt = firstTokenAt ?? finished;
    return {
      text,
      finishReason,
      usage: { prompt_tokens: prompt.length, completion_tokens: generated.length },
      timings: { prompt_ms: firstAt - started, generate_ms: finished - firstAt },
    };
  }

  async vram(): Promise<{ usedMiB: number; totalMiB: number } | undefined> {
    if (this.device.kind !== "cuda" || this.#disposing) return undefined;
    const state = await this.#parts.llama.getVramState();
    return { usedMiB: state.used / 2 ** 20, totalMiB: state.total / 2 ** 20 };
  }

  /** Idempotent: refuses new generations at once, waits for those in flight, then frees the
   * context, the model and (when owned) llama.cpp. */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      await (await this.#structured?.catch(() => undefined))?.dispose();
      const { context, model, llama, ownsLlama, log } = this.#parts;
      await context.dispose();
      await model.dispose();
      if (ownsLlama) await llama.dispose();
      log.info("hermes unloaded");
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

function abortError(signal: AbortSignal, completionTokens: number): ServiceError {
  if (signal.reason instanceof ServiceError) return signal.reason;
  return new ServiceError(
    "request_aborted",
    "The generation was aborted before it finished.",
    { completion_tokens: completionTokens },
    { cause: signal.reason },
  );
}
