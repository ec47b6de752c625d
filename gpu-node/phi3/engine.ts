/**
 * Our generation loop with continuous batching (onnxruntime-genai has no Node binding): up to
 * `parallel` sequences share one ONNX run per decode step (a batch dimension, one attention-mask
 * row and KV-cache row per sequence; see decoder.ts and kv.ts), each with its own grammar
 * matcher, budget planner position and sampler (sequence.ts). Sequences join and leave between
 * steps:
 *
 * - a newcomer's prompt is prefilled alone, in its own run, between two decode steps; at most
 *   one prefill per step (newcomers in arrival order), so a running sequence waits at most one
 *   prefill per token;
 * - a finished or cancelled sequence leaves at the next step boundary (cancelling one request
 *   stops only its sequence, within one step);
 * - rows from the end of the batch fill the leavers' places in place (KvBatch.compact); a
 *   newcomer's cache is copied in beside the batch's (KvBatch.gather).
 */
import type { GenerateControl, Phi3Constraint, Phi3GenerateInput } from "../runtime.ts";
import type {
  EngineParts,
  EngineStats,
  GenerateOptions,
  Request,
  Running,
} from "./engine-types.ts";
import { KvBatch } from "./kv.ts";
import { TokenSampler } from "./sampler.ts";
import { type RawGeneration, Sequence, type SequenceSetup } from "./sequence.ts";
import { type SetupHost, sequenceSetup } from "./setup.ts";

export type { RawGeneration } from "./sequence.ts";

export class Phi3Engine {
  readonly parallel: number;
  readonly kvTokens: number;
  readonly stats: EngineStats = { prefills: 0, steps: 0, stepRows: 0, maxRows: 0 };
  private readonly stopIds: ReadonlySet<number>;
  private readonly textLimit: number;
  private readonly waiting: Request[] = [];
  /** Batched sequences, in the batch's row order. */
  private rows: Running[] = [];
  private batch: KvBatch | undefined;
  /** kvCache: false sequences, each recomputed alone every step. */
  private solo: Running[] = [];
  private loop: Promise<void> | undefined;
  private readonly sampler: TokenSampler;

  constructor(private readonly parts: EngineParts) {
    this.parallel = Math.max(1, parts.parallel);
    this.kvTokens = parts.kvTokens ?? Number.POSITIVE_INFINITY;
    this.stopIds = new Set(parts.config.eosIds);
    // Ids past the tokenizer's vocabulary are padding of the logits, never chosen.
    this.textLimit = parts.vocabulary.tokens.reduce((max, t, id) => (t === "" ? max : id + 1), 0);
    this.sampler = new TokenSampler(parts.vocabulary.tokens.length);
  }

  /** Sequences running or waiting. */
  get load(): number {
    return this.rows.length + this.solo.length + this.waiting.length;
  }

  /** Resolves when nothing runs or waits. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /** The fewest tokens any valid proposal needs (the smallest usable max_length). */
  minimumTokens(constraint: Phi3Constraint = this.parts.constraint): number {
    return constraint.planner.cost(constraint.nfa.initial());
  }

  /** Tokenizes a prompt as the model will see it (chat frame, prompt as text). */
  promptTokens(prompt: string): number[] {
    return this.parts.tokenizer.encodeChat(prompt);
  }

  /** Queues a generation; it joins the batch at the next step with a free row. */
  run(
    input: Phi3GenerateInput,
    control: GenerateControl,
    options: GenerateOptions = {},
  ): Promise<RawGeneration> {
    const { signal } = control;
    if (signal.aborted) return Promise.reject(signal.reason);
    let setup: SequenceSetup;
    try {
      setup = this.setup(input, control, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<RawGeneration>((resolve, reject) => {
      const request: Request = {
        setup,
        solo: options.kvCache === false,
        resolve,
        reject,
        onAbort: () => {
          const i = this.waiting.indexOf(request);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener("abort", request.onAbort, { once: true });
      this.waiting.push(request);
      this.kick();
    });
  }

  private setup(
    input: Phi3GenerateInput,
    control: GenerateControl,
    options: GenerateOptions,
  ): SequenceSetup {
    const host: SetupHost = {
      parts: this.parts,
      kvTokens: this.kvTokens,
      textLimit: this.textLimit,
      stopIds: this.stopIds,
      sampler: this.sampler,
      promptTokens: (prompt) => this.promptTokens(prompt),
      minimumTokens: (constraint) => this.minimumTokens(constraint),
    };
    return sequenceSetup(host, input, control, options);
  }

  private kick(): void {
    if (this.loop) return;
    this.loop = this.drive()
      .catch((error: unknown) => this.failAll(error))
      .finally(() => {
        this.loop = undefined;
        if (this.load > 0) this.kick();
      });
  }

  private async drive(): Promise<void> {
    while (this.load > 0) {
      this.dropCancelled();
      const next =
        this.waiting.length > 0 &&
        this.active < this.parallel &&
        this.cacheFits(this.waiting[0] as Request);
      if (next) await this.admit(this.waiting.shift() as Request);
      await this.step();
    }
  }

  /** A bug in the loop itself: every caller gets the error, and the engine starts afresh. */
  private failAll(error: unknown): void {
    for (const r of [...this.rows, ...this.solo]) this.fail(r, error);
    for (const request of this.waiting.splice(0)) {
      request.setup.control.signal.removeEventListener("abort", request.onAbort);
      request.reject(error);
    }
    if (this.batch) for (const t of this.batch.tensors) t.dispose();
    this.rows = [];
    this.solo = [];
    this.batch = undefined;
  }

  private get active(): number {
    return this.rows.length + this.solo.length;
  }

  /** Whether a newcomer's row keeps the batch within kvTokens at its worst (every row as long
   * as the longest prompt + max_length). Alone it always fits (setup refused it otherwise). */
  private cacheFits(request: Request): boolean {
    if (this.rows.length === 0) return true;
    const need = (setup: SequenceSetup) => setup.prompt.length + setup.budget;
    const longest = Math.max(need(request.setup), ...this.rows.map((r) => need(r.request.setup)));
    return (this.rows.length + 1) * longest <= this.kvTokens;
  }

  /** Cancelled sequences leave: their callers get the signal's reason. */
  private dropCancelled(): void {
    const gone = (r: Running) => r.sequence.signal.aborted;
    for (const r of this.solo.filter(gone)) this.fail(r, r.sequence.signal.reason);
    this.solo = this.solo.filter((r) => !gone(r));
    if (this.rows.some(gone))
      this.keepRows(
        this.rows.map((r) => !gone(r)),
        (r) => this.fail(r, r.sequence.signal.reason),
      );
  }

  private fail(running: Running, error: unknown): void {
    running.sequence.discard();
    running.request.reject(error);
  }

  private done(running: Running): void {
    running.request.resolve(running.sequence.finish());
  }

  /** Keeps the rows marked true (in order), copying their caches into a new batch; `leave`
   * is called for the others. */
  private keepRows(keep: boolean[], leave: (r: Running) => void): void {
    if (keep.every(Boolean)) return;
    this.rows.forEach((r, row) => {
      if (!keep[row]) leave(r);
    });
    const batch = this.batch;
    if (!batch || !keep.some(Boolean)) {
      if (batch) for (const t of batch.tensors) t.dispose();
      this.batch = undefined;
      this.rows = [];
      return;
    }
    const stay = this.rows.filter((_, row) => keep[row]);
    const longest = Math.max(...stay.map((r) => batch.lengths[this.rows.indexOf(r)] as number));
    if (batch.width > 2 * longest + 16) {
      // Much wider than needed (the longest rows left): copy into a narrower batch.
      const from = this.rows.flatMap((_, row) => (keep[row] ? [{ batch, row }] : []));
      this.batch = KvBatch.gather(this.parts.decoder.layout, from);
      for (const t of batch.tensors) t.dispose();
      this.rows = stay;
      return;
    }
    const order = batch.compact(keep);
    this.rows = order.map((row) => this.rows[row] as Running);
  }

  /** Prefills a newcomer alone and gives it a row (or finishes it, if its first token ends it). */
  private async admit(request: Request): Promise<void> {
    const { signal } = request.setup.control;
    signal.removeEventListener("abort", request.onAbort);
    if (signal.aborted) {
      request.reject(signal.reason);
      return;
    }
    let sequence: Sequence;
    try {
      sequence = await Sequence.create(request.setup, this.parts.xgrammar);
    } catch (error) {
      request.reject(error);
      return;
    }
    try {
      this.stats.prefills++;
      const { logits, cache } = await this.parts.decoder.prefill(request.setup.prompt);
      sequence.promptMs = performance.now() - sequence.started;
      const token = await sequence.advance(logits);
      const running: Running = { request, sequence, token: token ?? -1 };
      if (token === undefined) {
        this.done(running);
      } else if (request.solo) {
        this.solo.push(running);
      } else {
        const rows = this.rows.map((_, row) => ({ batch: this.batch as KvBatch, row }));
        const old = this.batch;
        this.batch = KvBatch.gather(this.parts.decoder.layout, [...rows, { batch: cache, row: 0 }]);
        if (old) for (const t of old.tensors) t.dispose();
        this.rows.push(running);
      }
      for (const t of cache.tensors) t.dispose();
    } catch (error) {
      sequence.discard();
      request.reject(error);
    }
  }

  /** One decode step for every running sequence: one run for the batch, then each sequence
   * picks its next token. */
  private async step(): Promise<void> {
    if (this.rows.length > 0 && this.batch) {
      let logits: Float32Array[];
      this.stats.steps++;
      this.stats.stepRows += this.rows.length;
      this.stats.maxRows = Math.max(this.stats.maxRows, this.rows.length);
      try {
        logits = await this.parts.decoder.step(
          this.batch,
          this.rows.map((r) => r.token),
        );
      } catch (error) {
        this.keepRows(
          this.rows.map(() => false),
          (r) => this.fail(r, error),
        );
        logits = [];
      }
      if (logits.length > 0) {
        const outcomes = await Promise.allSettled(
          this.rows.map((r, row) => r.sequence.advance(logits[row] as Float32Array)),
        );
        const keep = outcomes.map((o, row) => {
          const r = this.rows[row] as Running;
          if (o.status === "rejected") return false;
          if (o.value === undefined) return false;
          r.token = o.value;
          return true;
        });
        this.keepRows(keep, (r) => {
          const row = this.rows.indexOf(r);
          const outcome = outcomes[row];
          if (outcome?.status === "rejected") this.fail(r, outcome.reason);
          else this.done(r);
        });
      }
    }
    for (const r of [...this.solo]) {
      try {
        this.stats.prefills++;
        const { logits, cache } = await this.parts.decoder.prefill([
          ...r.request.setup.prompt,
          ...r.sequence.generated,
        ]);
        for (const t of cache.tensors) t.dispose();
        const token = await r.sequence.advance(logits);
        if (token !== undefined) {
          r.token = token;
          continue;
        }
        this.done(r);
      } catch (error) {
        this.fail(r, error);
      }
      this.solo.splice(this.solo.indexOf(r), 1);
    }
  }
}
