/**
 * Scripted stand-ins for the model runtimes, for the scheduler's, abort and HTTP behaviour.
 * Each generate() call waits until the test finishes it (and may send text pieces first through
 * `call.text`), and rejects when its signal aborts, as the real runtimes do. (Real model tests
 * live with the runtimes.)
 */
import type { TradeProposal } from "../../gpu-node/contract/index.ts";
import type {
  GenerateControl,
  HermesGenerateInput,
  HermesResult,
  HermesRuntime,
  Phi3GenerateInput,
  Phi3RawResult,
  Phi3Result,
  Phi3Runtime,
} from "../../gpu-node/runtime.ts";

export interface ScriptedCall<I, R> {
  input: I;
  signal: AbortSignal;
  /** Sends a piece of text to the caller's onText, as a streaming runtime does. */
  text(piece: string): void;
  finish(result: R): void;
  fail(error: unknown): void;
}

class Script<I, R> {
  readonly calls: ScriptedCall<I, R>[] = [];
  #arrivals: ((call: ScriptedCall<I, R>) => void)[] = [];
  #handedOut = 0;
  /** Settled (finished, failed or aborted) calls. */
  settled = 0;
  /** Answer every call at once with this, when set. */
  autoReply: ((input: I) => R) | undefined;

  run(input: I, { signal, onText }: GenerateControl): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let done = false;
      const settle = (fn: () => void) => {
        if (done) return;
        done = true;
        this.settled++;
        signal.removeEventListener("abort", onAbort);
        fn();
      };
      const onAbort = () => settle(() => reject(signal.reason));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      const call: ScriptedCall<I, R> = {
        input,
        signal,
        text: (piece) => {
          if (!done) onText?.(piece);
        },
        finish: (result) => settle(() => resolve(result)),
        fail: (error) => settle(() => reject(error)),
      };
      this.calls.push(call);
      if (this.autoReply) call.finish(this.autoReply(input));
      const waiter = this.#arrivals.shift();
      if (waiter) {
        this.#handedOut++;
        waiter(call);
      }
    });
  }

  /** The oldest call not yet handed out by nextCall(), waiting for it if need be. */
  nextCall(): Promise<ScriptedCall<I, R>> {
    const ready = this.calls[this.#handedOut];
    if (ready) {
      this.#handedOut++;
      return Promise.resolve(ready);
    }
    return new Promise((resolve) => this.#arrivals.push(resolve));
  }
}

export function hermesResult(text = "A careful answer.", overrides: Partial<HermesResult> = {}) {
  return {
    text,
    finishReason: "stop",
    usage: { prompt_tokens: 12, completion_tokens: 4 },
    timings: { prompt_ms: 3, generate_ms: 7 },
    ...overrides,
  } satisfies HermesResult;
}

export const SAMPLE_PROPOSAL: TradeProposal = {
  ticker: "AAPL",
  action: "adjust",
  side: "LONG",
  new_stop_pct: 2.5,
  new_target_pct: null,
  confidence: 0.7,
  rationale: "Volatility rose after earnings.",
};

export function phi3Result(proposal: TradeProposal = SAMPLE_PROPOSAL): Phi3Result {
  return {
    proposal,
    raw: JSON.stringify(proposal),
    finishReason: "stop",
    usage: { prompt_tokens: 20, completion_tokens: 30 },
    timings: { prompt_ms: 5, generate_ms: 11 },
  };
}

export class ScriptedHermes implements HermesRuntime {
  readonly script = new Script<HermesGenerateInput, HermesResult>();
  disposed = false;
  vramReading: { usedMiB: number; totalMiB: number } | undefined;

  constructor(
    readonly parallel = 1,
    readonly device: { kind: "cuda" | "cpu"; name?: string } = { kind: "cpu" },
    readonly modelName = "scripted-hermes",
  ) {}

  generate(input: HermesGenerateInput, control: GenerateControl): Promise<HermesResult> {
    return this.script.run(input, control);
  }

  async vram() {
    return this.vramReading;
  }

  async dispose() {
    this.disposed = true;
  }
}

export class ScriptedPhi3 implements Phi3Runtime {
  readonly script = new Script<Phi3GenerateInput, Phi3Result>();
  disposed = false;

  constructor(
    readonly device: { kind: "cuda" | "cpu"; name?: string } = { kind: "cpu" },
    readonly modelName = "scripted-phi3",
    readonly parallel = 1,
  ) {}

  generate(input: Phi3GenerateInput, control: GenerateControl): Promise<Phi3Result> {
    return this.script.run(input, control);
  }

  async generateRaw(input: Phi3GenerateInput, control: GenerateControl): Promise<Phi3RawResult> {
    const { proposal: _, ...raw } = await this.generate(input, control);
    return { ...raw, tokens: [] };
  }

  async dispose() {
    this.disposed = true;
  }

  [Symbol.asyncDispose]() {
    return this.dispose();
  }
}
