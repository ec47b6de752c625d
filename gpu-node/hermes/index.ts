/**
 * The Hermes runtime: a GGUF chat model on node-llama-cpp (llama.cpp), CUDA or CPU.
 *
 * One context with `parallel` sequences; each request takes a free sequence, runs one chat turn
 * through the model's own chat template (Hermes-3: ChatML, picked by node-llama-cpp from
 * `tokenizer.chat_template`) and gives the sequence back, also when aborted or failed.
 */
import { basename } from "node:path";
import {
  type ChatWrapper,
  type GgufFileInfo,
  type Llama,
  LlamaChatSession,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  resolveChatWrapper,
} from "node-llama-cpp";
import { type Logger, pino } from "pino";
import {
  GpuNodeError,
  type HermesGenerateInput,
  type HermesOptions,
  type HermesResult,
  type HermesRuntime,
  type JsonGenerateInput,
  type JsonResult,
  type LoadOptions,
} from "../runtime.ts";
import { checkGgufFile } from "./check.ts";
import { getLlamaForDevice } from "./llama.ts";
import { HermesStructured } from "./structured.ts";

export { checkGgufFile, ModelFileError } from "./check.ts";
export { createLlamaFactory, getLlamaForDevice, type LlamaFactory } from "./llama.ts";

export interface HermesDeps {
  /** The process's one `Llama`; when absent, one is started for `options.gpu` and owned here. */
  llama?: Llama;
  logger?: Logger;
}

/** Counts free sequences; waiting callers queue in order and may give up through their signal. */
class Slots {
  private waiters: Array<() => void> = [];
  constructor(private free: number) {}

  async acquire(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== grant);
        reject(signal.reason);
      };
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

function abortError(signal: AbortSignal, completionTokens: number): Error {
  if (signal.reason instanceof GpuNodeError) return signal.reason;
  return new GpuNodeError(
    "request_aborted",
    499,
    "The generation was aborted before it finished.",
    { completion_tokens: completionTokens },
    { cause: signal.reason },
  );
}

/**
 * Loads a Hermes GGUF model. The file is checked first (a broken file is an Error with a message,
 * never a crashed process); progress goes to `load.onProgress`, `load.signal` cancels.
 */
export async function loadHermes(
  options: HermesOptions,
  load: LoadOptions = {},
  deps: HermesDeps = {},
): Promise<HermesRuntime> {
  const log = (deps.logger ?? pino({ level: "silent" })).child({ model: "hermes" });
  const signal = load.signal;
  // node-llama-cpp's load progress is not monotonic (it may report 1 before the real values);
  // callers get a fraction that never goes back.
  let reported = -1;
  const progress = (fraction: number, phase: string) => {
    if (fraction <= reported) return;
    reported = fraction;
    load.onProgress?.({ fraction, phase });
  };
  if (!Number.isInteger(options.parallel) || options.parallel < 1) {
    throw new Error(`parallel must be a positive integer, got ${options.parallel}`);
  }

  progress(0, "reading metadata");
  const checked = await checkGgufFile(options.modelPath, { expectedArchitecture: "llama", signal });
  signal?.throwIfAborted();
  log.info(
    { path: options.modelPath, name: checked.name, bytes: checked.fileSize },
    "hermes model file checked",
  );

  progress(0.05, "starting llama.cpp");
  const ownsLlama = deps.llama === undefined;
  const llama =
    deps.llama ?? (await getLlamaForDevice(options.gpu, { threads: options.threads, logger: log }));
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  try {
    if (options.gpu === "cuda" && llama.gpu !== "cuda") {
      throw new Error(
        `CUDA was requested but the given llama.cpp binding uses ${String(llama.gpu)}`,
      );
    }
    const onGpu = options.gpu !== "cpu" && llama.gpu !== false;
    signal?.throwIfAborted();

    progress(0.1, "loading weights");
    model = await llama.loadModel({
      modelPath: options.modelPath,
      // An explicit CUDA request puts every layer on the GPU or fails; "auto" fits what fits.
      gpuLayers: onGpu ? (options.gpu === "cuda" ? "max" : "auto") : 0,
      onLoadProgress: (p) => progress(0.1 + 0.8 * p, "loading weights"),
      loadSignal: signal,
    });
    signal?.throwIfAborted();

    progress(0.9, "creating context");
    context = await model.createContext({
      contextSize: options.contextSize,
      sequences: options.parallel,
      threads: options.threads > 0 ? options.threads : undefined,
      createSignal: signal,
    });
    progress(1, "ready");

    const deviceName = onGpu ? (await llama.getGpuDeviceNames())[0] : undefined;
    const runtime = new LlamaHermesRuntime(
      llama,
      ownsLlama,
      model,
      context,
      checked.name ?? basename(options.modelPath, ".gguf"),
      onGpu ? { kind: "cuda", name: deviceName } : { kind: "cpu" },
      options.parallel,
      log,
      checked.info,
    );
    log.info(
      { device: runtime.device, context: context.contextSize, parallel: options.parallel },
      "hermes ready",
    );
    return runtime;
  } catch (err) {
    await context?.dispose().catch(() => {});
    await model?.dispose().catch(() => {});
    if (ownsLlama) await llama.dispose().catch(() => {});
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

class LlamaHermesRuntime implements HermesRuntime {
  private readonly slots: Slots;
  private disposed = false;
  /** Resolved once: a session left to resolve it ("auto") re-reads the Jinja template each time,
   * about 0.4 s per request (BENCHMARKS.md, section 4). Chat wrappers are stateless. */
  private readonly chatWrapper: ChatWrapper;

  constructor(
    private readonly llama: Llama,
    private readonly ownsLlama: boolean,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    readonly modelName: string,
    readonly device: { kind: "cuda" | "cpu"; name?: string },
    readonly parallel: number,
    private readonly log: Logger,
    private readonly file: GgufFileInfo,
  ) {
    this.slots = new Slots(parallel);
    this.chatWrapper = resolveChatWrapper(model);
  }

  /** Prompt tokens exactly as the chat template lays out this turn (system, user, open reply). */
  private countPromptTokens(session: LlamaChatSession, prompt: string): number {
    const { contextText } = session.chatWrapper.generateContextState({
      chatHistory: [
        ...session.getChatHistory(),
        { type: "user", text: prompt },
        { type: "model", response: [] },
      ],
    });
    return contextText.tokenize(this.model.tokenizer).length;
  }

  async generate(input: HermesGenerateInput, signal: AbortSignal): Promise<HermesResult> {
    if (this.disposed) throw new GpuNodeError("model_not_loaded", 503, "Hermes has been unloaded.");
    await this.slots.acquire(signal);
    let sequence: LlamaContextSequence | undefined;
    let session: LlamaChatSession | undefined;
    let completionTokens = 0;
    try {
      sequence = this.context.getSequence();
      session = new LlamaChatSession({
        contextSequence: sequence,
        // Always set: node-llama-cpp adds its own default system prompt when this is undefined.
        systemPrompt: input.systemPrompt,
        chatWrapper: this.chatWrapper,
        autoDisposeSequence: false,
      });

      const promptTokens = this.countPromptTokens(session, input.prompt);
      const contextLength = sequence.contextSize;
      // A caller that set minTokens accepts fewer new tokens than maxTokens when room is short.
      const maxTokens =
        input.minTokens !== undefined && promptTokens + input.minTokens <= contextLength
          ? Math.min(input.maxTokens, contextLength - promptTokens)
          : input.maxTokens;
      if (promptTokens + maxTokens > contextLength) {
        throw new GpuNodeError(
          "prompt_too_long",
          400,
          `The prompt is ${promptTokens} tokens (with the chat template and system prompt) and max_length asks for ${input.maxTokens} new tokens: ${promptTokens + input.maxTokens} exceeds the context of ${contextLength} tokens. Shorten the prompt to at most ${Math.max(0, contextLength - input.maxTokens)} tokens or lower max_length.`,
          {
            prompt_tokens: promptTokens,
            context_length: contextLength,
            max_length: input.maxTokens,
          },
        );
      }

      const sampling = input.sampling ?? {};
      const started = performance.now();
      let firstTokenAt: number | undefined;
      const result = await session.promptWithMeta(input.prompt, {
        maxTokens,
        // 0 (the default) is greedy decoding in node-llama-cpp.
        temperature: sampling.temperature ?? 0,
        topP: sampling.top_p,
        seed: sampling.seed,
        signal,
        stopOnAbortSignal: true,
        onToken: (tokens) => {
          firstTokenAt ??= performance.now();
          completionTokens += tokens.length;
        },
      });
      const finished = performance.now();
      if (signal.aborted || result.stopReason === "abort")
        throw abortError(signal, completionTokens);

      const finishReason: HermesResult["finishReason"] =
        result.stopReason === "maxTokens" ? "length" : "stop";
      const firstAt = firstTokenAt ?? finished;
      return {
        text: result.responseText,
        finishReason,
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens },
        timings: { prompt_ms: firstAt - started, generate_ms: finished - firstAt },
      };
    } catch (err) {
      if (signal.aborted && !(err instanceof GpuNodeError))
        throw abortError(signal, completionTokens);
      throw err;
    } finally {
      session?.dispose({ disposeSequence: false });
      // Disposing the sequence clears its KV cells and returns it to the context.
      sequence?.dispose();
      this.slots.release();
    }
  }

  /** Structured output (hermes/structured.ts), set up on the first JSON request. */
  private structured: Promise<HermesStructured> | undefined;

  async generateJson(input: JsonGenerateInput, signal: AbortSignal): Promise<JsonResult> {
    if (this.disposed) throw new GpuNodeError("model_not_loaded", 503, "Hermes has been unloaded.");
    this.structured ??= HermesStructured.create(this.model, this.file);
    this.structured.catch(() => {
      this.structured = undefined;
    });
    const structured = await this.structured;
    // Compiled (or refused) before a sequence is taken.
    const lease = await structured.lease(input.schema);
    try {
      await this.slots.acquire(signal);
      const sequence = this.context.getSequence();
      try {
        const prompt = structured.promptTokens(this.chatWrapper, {
          ...input,
          systemPrompt: input.systemPrompt ?? "",
        });
        return await structured.generate(sequence, prompt, input, lease.constraint, signal);
      } finally {
        sequence.dispose();
        this.slots.release();
      }
    } finally {
      lease.release();
    }
  }

  async vram(): Promise<{ usedMiB: number; totalMiB: number } | undefined> {
    if (this.device.kind !== "cuda" || this.disposed) return undefined;
    const state = await this.llama.getVramState();
    return { usedMiB: state.used / 2 ** 20, totalMiB: state.total / 2 ** 20 };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await (await this.structured?.catch(() => undefined))?.dispose();
    await this.context.dispose();
    await this.model.dispose();
    if (this.ownsLlama) await this.llama.dispose();
    this.log.info("hermes unloaded");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
