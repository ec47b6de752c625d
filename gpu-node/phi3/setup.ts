/**
 * A request's checks and its sequence's setup before it queues: the prompt fits the cache and
 * the context, the budget fits the constraint's shortest proposal, and the sampling parameters.
 */
import { randomInt } from "node:crypto";
import { ServiceError } from "../contract/errors.ts";
import type { GenerateControl, Phi3Constraint, Phi3GenerateInput } from "../runtime.ts";
import { budgetTooSmall } from "../structured/index.ts";
import type { EngineParts, GenerateOptions } from "./engine-types.ts";
import { mulberry32, type TokenSampler } from "./sampler.ts";
import type { SequenceSetup } from "./sequence.ts";

/** What the engine lends the setup: its parts, bounds and shared sampler. */
export interface SetupHost {
  parts: EngineParts;
  kvTokens: number;
  textLimit: number;
  stopIds: ReadonlySet<number>;
  sampler: TokenSampler;
  promptTokens(prompt: string): number[];
  minimumTokens(constraint: Phi3Constraint): number;
}

export function sequenceSetup(
  host: SetupHost,
  input: Phi3GenerateInput,
  control: GenerateControl,
  options: GenerateOptions,
): SequenceSetup {
  const { config, vocabulary } = host.parts;
  const budget = input.maxTokens;
  const prompt = host.promptTokens(input.prompt);
  if (prompt.length + budget > host.kvTokens && host.kvTokens < config.contextLength) {
    throw new ServiceError(
      "prompt_too_long",
      `the prompt is ${prompt.length} tokens; with max_length ${budget} that exceeds the ${host.kvTokens} cache positions one Phi-3 batch may hold (PHI3_KV_TOKENS): shorten the prompt or lower max_length`,
      { prompt_tokens: prompt.length, context_length: host.kvTokens, max_length: budget },
    );
  }
  if (prompt.length + budget > config.contextLength) {
    throw new ServiceError(
      "prompt_too_long",
      `the prompt is ${prompt.length} tokens; with max_length ${budget} that exceeds the model's context of ${config.contextLength} tokens: shorten the prompt or lower max_length`,
      { prompt_tokens: prompt.length, context_length: config.contextLength, max_length: budget },
    );
  }
  const constraint =
    options.constrained === false ? undefined : (input.constraint ?? host.parts.constraint);
  if (constraint) {
    const minimum = host.minimumTokens(constraint);
    if (minimum > budget) {
      // A request's own schema (structured output) speaks max_tokens; the trade schema's
      // seed endpoint speaks max_length.
      if (input.constraint) throw budgetTooSmall(budget, minimum);
      throw new ServiceError(
        "budget_too_small",
        `max_length ${budget} is too small: the shortest valid proposal needs ${minimum} tokens`,
        { min_max_length: minimum },
      );
    }
  }
  const sampling = input.sampling;
  return {
    prompt,
    budget,
    constraint,
    params: {
      temperature: sampling?.temperature ?? 0,
      topK: sampling?.top_k ?? 0,
      topP: sampling?.top_p ?? 1,
    },
    random: mulberry32(sampling?.seed ?? randomInt(2 ** 32)),
    control,
    vocabulary,
    textLimit: host.textLimit,
    stopIds: host.stopIds,
    sampler: host.sampler,
  };
}
