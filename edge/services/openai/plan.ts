/**
 * From a validated /v1/chat/completions body to what the edge will ask the GPU node: a pure
 * function, so every refusal is tested without a server.
 *
 * - Fields OpenAI defines that we do not serve are refused (400 unsupported_parameter, `param`
 *   names the field) when ignoring them would change the answer, and accepted and ignored when it
 *   would not. A field OpenAI does not define is refused too (a typo should not pass silently).
 * - model "phi3" is the trade-proposal path unless response_format asks for another JSON schema;
 *   it never writes free text.
 * - JSON for any other schema (either model) goes to the GPU node's any-schema routes: the answer
 *   always satisfies the schema or is an error, never unconstrained text under a 200.
 */
import {
  type ChatMessage,
  type Sampling,
  TRADE_PROPOSAL_JSON_SCHEMA,
} from "../../../gpu-node/contract/index.ts";
import { ApiError } from "../../errors.ts";
import { type ChatCompletionRequest, MODEL_IDS, type ModelId } from "./wire.ts";

/** New tokens when the request names no max_tokens / max_completion_tokens (the seed's default). */
export const DEFAULT_MAX_TOKENS = 256;

/** Fields read from the request. */
const SERVED_FIELDS = new Set([
  "model",
  "messages",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "seed",
  "stop",
  "n",
  "stream",
  "stream_options",
  "response_format",
]);

/** OpenAI fields accepted and ignored: they do not change the answer. */
export const IGNORED_FIELDS = [
  "user",
  "metadata",
  "store",
  "service_tier",
  "parallel_tool_calls",
  "prompt_cache_key",
  "prompt_cache_retention",
  "safety_identifier",
] as const;

const isNullish = (v: unknown) => v === null || v === undefined;

/**
 * OpenAI fields refused unless they hold their neutral value (the one that means "off"), because
 * ignoring them would change the answer.
 */
export const REFUSED_FIELDS: Record<string, (value: unknown) => boolean> = {
  tools: (v) => isNullish(v) || (Array.isArray(v) && v.length === 0),
  tool_choice: (v) => isNullish(v) || v === "none" || v === "auto",
  functions: (v) => isNullish(v) || (Array.isArray(v) && v.length === 0),
  function_call: (v) => isNullish(v) || v === "none" || v === "auto",
  logprobs: (v) => isNullish(v) || v === false,
  top_logprobs: (v) => isNullish(v) || v === 0,
  logit_bias: (v) => isNullish(v) || (typeof v === "object" && Object.keys(v).length === 0),
  presence_penalty: (v) => isNullish(v) || v === 0,
  frequency_penalty: (v) => isNullish(v) || v === 0,
  modalities: (v) => isNullish(v) || (Array.isArray(v) && v.length === 1 && v[0] === "text"),
  audio: isNullish,
  prediction: isNullish,
  web_search_options: isNullish,
  reasoning_effort: isNullish,
  verbosity: isNullish,
};

export type ChatMode =
  /** Hermes free text. */
  | { kind: "text" }
  /** Phi-3's trade proposal: recorded, takes feedback. */
  | { kind: "proposal"; prompt: string }
  /** Any other JSON schema, on the model's any-schema route. Phi-3 takes one prompt (the last
   * user message, as for a proposal), Hermes the conversation. */
  | { kind: "json"; schema: Record<string, unknown>; prompt?: string };

export interface ChatPlan {
  model: ModelId;
  /** The conversation for the node, text parts joined, "developer" as "system". */
  messages: ChatMessage[];
  maxTokens: number;
  sampling?: Sampling;
  stop?: string[];
  stream: boolean;
  includeUsage: boolean;
  mode: ChatMode;
  /** The request's response_format, kept for the record (null: none or text). */
  responseFormat: Record<string, unknown> | null;
  /** Ignored fields the request carried (logged at debug level). */
  ignored: string[];
}

const unsupported = (param: string, message: string) =>
  new ApiError("unsupported_parameter", message, { param });

/** Structural equality with object keys in any order (JSON values only). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((v, i) => sameJson(v, b[i]))
    );
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) =>
        Object.hasOwn(b, k) &&
        sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

export function isTradeSchema(schema: unknown): boolean {
  return sameJson(schema, TRADE_PROPOSAL_JSON_SCHEMA);
}

export function planChat(body: ChatCompletionRequest): ChatPlan {
  const ignored: string[] = [];
  for (const [field, value] of Object.entries(body)) {
    if (SERVED_FIELDS.has(field)) continue;
    if ((IGNORED_FIELDS as readonly string[]).includes(field)) {
      ignored.push(field);
      continue;
    }
    const neutral = REFUSED_FIELDS[field];
    if (neutral) {
      if (neutral(value)) continue;
      throw unsupported(
        field,
        `${field} is not supported by this server (ignoring it would change the answer).`,
      );
    }
    throw unsupported(field, `Unrecognized request argument supplied: ${field}`);
  }

  if (!(MODEL_IDS as readonly string[]).includes(body.model)) {
    throw new ApiError(
      "model_not_found",
      `The model \`${body.model}\` does not exist. Available models: ${MODEL_IDS.join(", ")}.`,
      { param: "model" },
    );
  }
  const model = body.model as ModelId;

  if (!isNullish(body.n) && body.n !== 1) {
    throw unsupported("n", "n must be 1: this server returns one choice per request.");
  }

  const messages: ChatMessage[] = body.messages.map((m) => ({
    role: m.role === "developer" ? "system" : m.role,
    content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
  }));
  messages.forEach((m, i) => {
    if (m.content.includes("\u0000")) {
      throw new ApiError("invalid_parameter", "Message content must not contain NUL characters.", {
        param: `messages[${i}].content`,
      });
    }
  });
  const lastUser = messages.findLast((m) => m.role === "user");
  if (!lastUser || lastUser.content.trim() === "") {
    throw new ApiError("invalid_parameter", "messages must contain a non-empty user message.", {
      param: "messages",
    });
  }

  const stop = isNullish(body.stop)
    ? undefined
    : typeof body.stop === "string"
      ? [body.stop]
      : (body.stop ?? undefined);

  const sampling: Sampling = {};
  if (!isNullish(body.temperature)) sampling.temperature = body.temperature as number;
  if (!isNullish(body.top_p)) sampling.top_p = body.top_p as number;
  if (!isNullish(body.seed)) sampling.seed = body.seed as number;

  const format = body.response_format ?? undefined;
  let mode: ChatMode;
  if (model === "phi3") {
    if (format?.type === "text") {
      throw unsupported(
        "response_format",
        "model phi3 answers JSON only: omit response_format (a trade proposal), or ask for " +
          "json_object or json_schema.",
      );
    }
    const schema = format?.type === "json_schema" ? format.json_schema.schema : undefined;
    if (format?.type === "json_schema" && schema === undefined) {
      throw new ApiError("invalid_parameter", "response_format.json_schema.schema is required.", {
        param: "response_format.json_schema.schema",
      });
    }
    mode =
      schema === undefined || isTradeSchema(schema)
        ? { kind: "proposal", prompt: lastUser.content }
        : { kind: "json", schema, prompt: lastUser.content };
  } else if (!format || format.type === "text") {
    mode = { kind: "text" };
  } else if (format.type === "json_object") {
    mode = { kind: "json", schema: { type: "object" } };
  } else {
    if (format.json_schema.schema === undefined) {
      throw new ApiError("invalid_parameter", "response_format.json_schema.schema is required.", {
        param: "response_format.json_schema.schema",
      });
    }
    mode = { kind: "json", schema: format.json_schema.schema };
  }
  if (stop && mode.kind !== "text") {
    throw unsupported(
      "stop",
      "stop is not supported for JSON answers: the output ends when its schema closes.",
    );
  }

  return {
    model,
    messages,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS,
    ...(Object.keys(sampling).length > 0 ? { sampling } : {}),
    ...(stop ? { stop } : {}),
    stream: body.stream === true,
    includeUsage: body.stream === true && body.stream_options?.include_usage === true,
    mode,
    responseFormat: format && format.type !== "text" ? (format as Record<string, unknown>) : null,
    ignored,
  };
}
