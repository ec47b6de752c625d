/**
 * The Phi-3 runtime: an onnxruntime-genai ONNX export run by onnxruntime-node, our own
 * generation loop, and schema-constrained decoding (xgrammar's token masks plus a budget plan),
 * so every result is a trade proposal that satisfies the contract's schema. See README.md here.
 */
import { basename } from "node:path";
import type { Logger } from "pino";
import { ServiceError } from "../contract/errors.ts";
import { TradeProposal } from "../contract/index.ts";
import type {
  GenerateControl,
  JsonGenerateInput,
  JsonResult,
  LoadOptions,
  Phi3GenerateInput,
  Phi3Options,
  Phi3Result,
  Phi3Runtime,
} from "../runtime.ts";
import { BudgetPlanner } from "../structured/budget.ts";
import { ByteNfa } from "../structured/byte-nfa.ts";
import { budgetTooSmall, ConstraintCache, type ConstraintLease } from "../structured/index.ts";
import { OnnxDecoder } from "./decoder.ts";
import { Phi3Engine, type RawGeneration } from "./engine.ts";
import type { EngineStats, GenerateOptions } from "./engine-types.ts";
import { type Phi3ModelConfig, readPhi3Folder } from "./folder.ts";
import { tradeProposalLanguage } from "./grammar.ts";
import { buildVocabulary, createPromptTokenizer, type Vocabulary } from "./vocab.ts";
import { loadXGrammar, type TokenizerInfo, type XGrammar } from "./xgrammar.ts";

export { BudgetPlanner } from "../structured/budget.ts";
export { ByteNfa } from "../structured/byte-nfa.ts";
export type { RawGeneration } from "./engine.ts";
export type { EngineStats, GenerateOptions } from "./engine-types.ts";
export { Phi3FolderError, parseGenaiConfig, readPhi3Folder } from "./folder.ts";
export { tradeProposalLanguage } from "./grammar.ts";
export { maskAllows, mulberry32, TokenSampler } from "./sampler.ts";
export { buildVocabulary, createChatFormatter, createPromptTokenizer } from "./vocab.ts";
export { bitmaskAllows, loadXGrammar } from "./xgrammar.ts";

export interface Phi3Deps {
  logger?: Logger;
}

/** What loadPhi3 returns: the service's interface plus what tests and the benchmark use. */
export interface Phi3OnnxRuntime extends Phi3Runtime {
  /** The fewest tokens a valid proposal needs: the smallest max_length that can succeed. */
  readonly minMaxLength: number;
  readonly contextLength: number;
  /** The raw text in `input.constraint`'s language (default: the trade schema's). Options for
   * tests and benchmarks: `constrained: false` runs without the grammar, `kvCache: false`
   * recomputes every step. */
  generateRaw(
    input: Phi3GenerateInput,
    control: GenerateControl,
    options?: GenerateOptions,
  ): Promise<RawGeneration>;
  /** Prompt tokens after the chat template (for callers that want to check the context). */
  countPromptTokens(prompt: string): number;
  /** ONNX runs since load (prefills, batched decode steps and their rows). */
  readonly stats: Readonly<EngineStats>;
  /** A JSON Schema of the subset compiled for this model (xgrammar on its vocabulary, the
   * planner on its tokens), cached by schema hash; pass `lease.constraint` as
   * `Phi3GenerateInput.constraint` and `release()` it when the generation is over. Throws
   * ServiceError invalid_schema / unsupported_schema. */
  constraintFor(schema: unknown): Promise<ConstraintLease>;
  generateJson(input: JsonGenerateInput, control: GenerateControl): Promise<JsonResult>;
}

/** xgrammar's view of the real vocabulary. Control tokens become "" so xgrammar treats them as
 * special and never allows them inside the JSON text; ids past the tokenizer are padding. */
export function createTokenizerInfo(
  xgrammar: XGrammar,
  vocabulary: Vocabulary,
  config: Phi3ModelConfig,
): Promise<TokenizerInfo> {
  const encoded = vocabulary.tokens.map((t, id) => (vocabulary.specialIds.has(id) ? "" : t));
  return xgrammar.TokenizerInfo.createTokenizerInfo(
    encoded,
    "byte_fallback",
    vocabulary.prependSpace,
    config.vocabSize,
    config.eosIds,
  );
}

/** Sequences per decode step when Phi3Options.parallel is unset. */
export const DEFAULT_PHI3_PARALLEL = 4;

export async function loadPhi3(
  options: Phi3Options,
  load: LoadOptions,
  deps: Phi3Deps = {},
): Promise<Phi3OnnxRuntime> {
  const { signal, onProgress } = load;
  const logger = deps.logger;
  const progress = (fraction: number, phase: string) => {
    signal?.throwIfAborted();
    onProgress?.({ fraction, phase });
    logger?.debug({ fraction, phase }, "Phi-3 loading");
  };

  progress(0, "tokenizer");
  const folder = await readPhi3Folder(options.modelDir);
  const { config } = folder;
  const vocabulary = buildVocabulary(folder.tokenizerJson, config.vocabSize);
  const tokenizer = createPromptTokenizer(folder.tokenizerJson, folder.tokenizerConfig);

  progress(0.2, "session");
  const decoder = await OnnxDecoder.create(config, {
    device: options.device,
    threads: options.threads,
    ...(logger ? { logger } : {}),
  });
  // Everything built from here on is freed if the load fails later (abort included).
  const owned: { dispose(): void }[] = [];
  try {
    progress(0.7, "grammar compile");
    const xgrammar = await loadXGrammar();
    const tokenizerInfo = await createTokenizerInfo(xgrammar, vocabulary, config);
    owned.push(tokenizerInfo);
    const compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(tokenizerInfo);
    const language = tradeProposalLanguage();
    let grammar: Awaited<ReturnType<typeof compiler.compileGrammar>>;
    try {
      grammar = await compiler.compileGrammar(language.ebnf);
    } finally {
      compiler.dispose();
    }
    owned.push(grammar);
    const nfa = new ByteNfa(language.lang);
    const planner = new BudgetPlanner(nfa, vocabulary);
    const engine = new Phi3Engine({
      config,
      decoder,
      tokenizer,
      vocabulary,
      xgrammar,
      constraint: { grammar, nfa, planner },
      parallel: options.parallel ?? DEFAULT_PHI3_PARALLEL,
      ...(options.kvTokens !== undefined ? { kvTokens: options.kvTokens } : {}),
    });
    const minMaxLength = engine.minimumTokens();
    const constraints = new ConstraintCache({ xgrammar, tokenizerInfo, vocabulary });
    progress(1, "ready");
    logger?.info(
      {
        model: config.modelFile,
        device: decoder.device.kind,
        layers: config.numLayers,
        parallel: engine.parallel,
        kv_tokens: engine.kvTokens,
        min_max_length: minMaxLength,
      },
      "Phi-3 loaded",
    );
    return new Phi3Onnx(engine, decoder, owned, constraints, {
      modelName: basename(config.modelFile).replace(/\.onnx$/, ""),
      minMaxLength,
      contextLength: config.contextLength,
    });
  } catch (error) {
    for (const item of owned) item.dispose();
    await decoder.release();
    throw error;
  }
}

/** The loaded runtime: the engine behind the service's interface, and its lifecycle. */
class Phi3Onnx implements Phi3OnnxRuntime {
  readonly modelName: string;
  readonly minMaxLength: number;
  readonly contextLength: number;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly engine: Phi3Engine,
    private readonly decoder: OnnxDecoder,
    private readonly owned: { dispose(): void }[],
    private readonly constraints: ConstraintCache,
    info: { modelName: string; minMaxLength: number; contextLength: number },
  ) {
    this.modelName = info.modelName;
    this.minMaxLength = info.minMaxLength;
    this.contextLength = info.contextLength;
  }

  get device() {
    return this.decoder.device;
  }

  get parallel(): number {
    return this.engine.parallel;
  }

  get stats(): Readonly<EngineStats> {
    return { ...this.engine.stats };
  }

  get disposed(): boolean {
    return this.closing !== undefined;
  }

  private open(): void {
    if (this.closing) {
      throw new ServiceError("model_not_loaded", "Phi-3 runtime has been disposed.", {
        state: "disposed",
      });
    }
  }

  async generate(input: Phi3GenerateInput, control: GenerateControl): Promise<Phi3Result> {
    if (input.constraint) {
      throw new Error("generate() writes trade proposals; use generateRaw() for a constraint");
    }
    const result = await this.generateRaw(input, control);
    const proposal = TradeProposal.parse(JSON.parse(result.raw));
    return { ...result, proposal };
  }

  generateRaw(
    input: Phi3GenerateInput,
    control: GenerateControl,
    options: GenerateOptions = {},
  ): Promise<RawGeneration> {
    try {
      this.open();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.engine.run(input, control, options);
  }

  constraintFor(schema: unknown): Promise<ConstraintLease> {
    this.open();
    return this.constraints.lease(schema);
  }

  async generateJson(input: JsonGenerateInput, control: GenerateControl): Promise<JsonResult> {
    this.open();
    if (input.prompt === undefined) {
      throw new ServiceError("invalid_request", "Phi-3 takes a prompt, not messages.");
    }
    const lease = await this.constraints.lease(input.schema);
    try {
      const { constraint } = lease;
      if (constraint.minTokens > input.maxTokens) {
        throw budgetTooSmall(input.maxTokens, constraint.minTokens);
      }
      const result = await this.generateRaw(
        {
          prompt: input.prompt,
          maxTokens: input.maxTokens,
          ...(input.sampling ? { sampling: input.sampling } : {}),
          constraint,
        },
        control,
      );
      return {
        json: JSON.parse(result.raw),
        raw: result.raw,
        finishReason: result.finishReason,
        usage: result.usage,
        timings: result.timings,
      };
    } finally {
      lease.release();
    }
  }

  countPromptTokens(prompt: string): number {
    return this.engine.promptTokens(prompt).length;
  }

  /** Idempotent: the first call waits for the generations in flight (and those already
   * waiting for a row), then frees the grammar, the tokenizer info and the session. */
  dispose(): Promise<void> {
    this.closing ??= (async () => {
      await this.engine.idle();
      await this.constraints.dispose();
      for (const item of this.owned) item.dispose();
      await this.decoder.release();
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
