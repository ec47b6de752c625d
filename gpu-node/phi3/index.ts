/**
 * The Phi-3 runtime: an onnxruntime-genai ONNX export run by onnxruntime-node, our own
 * generation loop, and schema-constrained decoding (xgrammar's token masks plus a budget plan),
 * so every result is a trade proposal that satisfies the contract's schema. See README.md here.
 */
import { basename } from "node:path";
import type { Logger } from "pino";
import { ServiceError } from "../contract/errors.ts";
import type {
  JsonGenerateInput,
  JsonResult,
  LoadOptions,
  Phi3GenerateInput,
  Phi3Options,
  Phi3Result,
  Phi3Runtime,
} from "../runtime.ts";
import { BudgetPlanner } from "../structured/budget.ts";
import { budgetTooSmall, ConstraintCache, type ConstraintLease } from "../structured/index.ts";
import { ByteNfa } from "../structured/language.ts";
import { OnnxDecoder } from "./decoder.ts";
import { type GenerateOptions, Phi3Engine, type RawGeneration } from "./engine.ts";
import { type Phi3ModelConfig, readPhi3Folder } from "./folder.ts";
import { tradeProposalLanguage } from "./grammar.ts";
import {
  buildVocabulary,
  createChatFormatter,
  createPromptTokenizer,
  type Vocabulary,
} from "./vocab.ts";
import { loadXGrammar, type TokenizerInfo, type XGrammar } from "./xgrammar.ts";

export { BudgetPlanner } from "../structured/budget.ts";
export { ByteNfa } from "../structured/language.ts";
export type { GenerateOptions, RawGeneration } from "./engine.ts";
export { Phi3FolderError, parseGenaiConfig, readPhi3Folder } from "./folder.ts";
export { tradeProposalLanguage } from "./grammar.ts";
export { createStepSampler, mulberry32 } from "./sampler.ts";
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
  /** Lower-level generation: `constrained: false` runs without the grammar (benchmarks). */
  generateRaw(
    input: Phi3GenerateInput,
    signal: AbortSignal,
    options?: GenerateOptions,
  ): Promise<RawGeneration>;
  /** Prompt tokens after the chat template (for callers that want to check the context). */
  countPromptTokens(prompt: string): number;
  /** A JSON Schema of the subset compiled for this model (xgrammar on its vocabulary, the
   * planner on its tokens), cached by schema hash; pass `lease.constraint` as
   * `Phi3GenerateInput.constraint` and `release()` it when the generation is over. Throws
   * ServiceError invalid_schema / unsupported_schema. */
  constraintFor(schema: unknown): Promise<ConstraintLease>;
  generateJson(input: JsonGenerateInput, signal: AbortSignal): Promise<JsonResult>;
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
  const chat = createChatFormatter(folder.tokenizerConfig);
  const tokenizer = createPromptTokenizer(folder.tokenizerJson, folder.tokenizerConfig);

  progress(0.2, "session");
  const decoder = await OnnxDecoder.create(config, {
    device: options.device,
    threads: options.threads,
    ...(logger ? { logger } : {}),
  });
  let tokenizerInfo: TokenizerInfo | undefined;
  try {
    progress(0.7, "grammar compile");
    const xgrammar = await loadXGrammar();
    tokenizerInfo = await createTokenizerInfo(xgrammar, vocabulary, config);
    const compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(tokenizerInfo);
    const language = tradeProposalLanguage();
    let grammar: Awaited<ReturnType<typeof compiler.compileGrammar>>;
    try {
      grammar = await compiler.compileGrammar(language.ebnf);
    } finally {
      compiler.dispose();
    }
    const nfa = new ByteNfa(language.lang);
    const planner = new BudgetPlanner(nfa, vocabulary);
    const engine = new Phi3Engine({
      config,
      decoder,
      chat,
      tokenizer,
      vocabulary,
      xgrammar,
      grammar,
      nfa,
      planner,
    });
    const minMaxLength = engine.minimumTokens();
    progress(1, "ready");
    logger?.info(
      {
        model: config.modelFile,
        device: decoder.device.kind,
        layers: config.numLayers,
        min_max_length: minMaxLength,
      },
      "Phi-3 loaded",
    );
    const info = tokenizerInfo;
    const constraints = new ConstraintCache({ xgrammar, tokenizerInfo: info, vocabulary });
    let disposed = false;
    return {
      modelName: basename(config.modelFile).replace(/\.onnx$/, ""),
      device: decoder.device,
      minMaxLength,
      contextLength: config.contextLength,
      generate: (input, generateSignal): Promise<Phi3Result> =>
        engine.generate(input, generateSignal),
      generateRaw: (input, generateSignal, generateOptions = {}) =>
        engine.run(input, generateSignal, generateOptions),
      countPromptTokens: (prompt) => engine.promptTokens(prompt).length,
      constraintFor: (schema) => constraints.lease(schema),
      async generateJson(input, generateSignal): Promise<JsonResult> {
        if (input.prompt === undefined) {
          throw new ServiceError("invalid_request", "Phi-3 takes a prompt, not messages.");
        }
        const lease = await constraints.lease(input.schema);
        try {
          const { constraint } = lease;
          if (constraint.minTokens > input.maxTokens) {
            throw budgetTooSmall(input.maxTokens, constraint.minTokens);
          }
          const result = await engine.run(
            {
              prompt: input.prompt,
              maxTokens: input.maxTokens,
              ...(input.sampling ? { sampling: input.sampling } : {}),
              constraint,
            },
            generateSignal,
            {},
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
      },
      async dispose() {
        if (disposed) return;
        disposed = true;
        // A generation in flight finishes first: its session and matcher must outlive it.
        await engine.idle();
        await constraints.dispose();
        grammar.dispose();
        info.dispose();
        await decoder.release();
      },
    };
  } catch (error) {
    tokenizerInfo?.dispose();
    await decoder.release();
    throw error;
  }
}
