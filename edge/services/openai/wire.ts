/**
 * OpenAI's wire format for the edge's /v1 surface (the part we serve), as zod-openapi schemas:
 * the routes validate and document with them, the services build answers with them, tests
 * import the types.
 */
import { z } from "@hono/zod-openapi";
import { MAX_LENGTH_MAX, MAX_LENGTH_MIN } from "../../../gpu-node/contract/index.ts";

/** The ids of GET /v1/models, the same as the seed's model_id. */
export const MODEL_IDS = ["hermes", "phi3"] as const;
export type ModelId = (typeof MODEL_IDS)[number];

const TextPart = z
  .object({ type: z.literal("text"), text: z.string() })
  .strict()
  .openapi("ChatTextPart");

export const ChatRequestMessage = z
  .object({
    /** "developer" is OpenAI's newer name for "system". Tool and function messages are refused. */
    role: z.enum(["system", "developer", "user", "assistant"]),
    content: z.union([z.string(), z.array(TextPart).min(1)]),
    /** Accepted and ignored. */
    name: z.string().optional(),
  })
  .strict()
  .openapi("ChatRequestMessage");
export type ChatRequestMessage = z.infer<typeof ChatRequestMessage>;

const Tokens = (name: string) =>
  z
    .number()
    .int(`${name} must be an integer`)
    .min(MAX_LENGTH_MIN, `${name} must be at least ${MAX_LENGTH_MIN}`)
    .max(MAX_LENGTH_MAX, `${name} must be at most ${MAX_LENGTH_MAX}`)
    .nullable()
    .optional();

export const JsonSchemaFormat = z
  .object({
    name: z.string().min(1).max(64),
    description: z.string().optional(),
    schema: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  })
  .strict();

export const ResponseFormat = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("text") }).strict(),
    z.object({ type: z.literal("json_object") }).strict(),
    z.object({ type: z.literal("json_schema"), json_schema: JsonSchemaFormat }).strict(),
  ])
  .openapi("ResponseFormat");
export type ResponseFormat = z.infer<typeof ResponseFormat>;

/**
 * The request. Loose at the top level on purpose: fields OpenAI defines but we do not serve are
 * refused or ignored by name (services/openai/plan.ts), not lost in a generic error.
 */
export const ChatCompletionRequest = z
  .object({
    model: z.string().min(1).openapi({ example: "hermes", description: '"hermes" or "phi3".' }),
    messages: z.array(ChatRequestMessage).min(1),
    max_tokens: Tokens("max_tokens").openapi({ description: "New tokens at most (default 256)." }),
    max_completion_tokens: Tokens("max_completion_tokens").openapi({
      description: "Same as max_tokens; wins when both are set.",
    }),
    temperature: z.number().min(0).max(2).nullable().optional().openapi({
      description: "0 or absent: greedy.",
    }),
    top_p: z.number().gt(0).max(1).nullable().optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .nullable()
      .optional(),
    stop: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1).max(4)])
      .nullable()
      .optional(),
    n: z.number().int().nullable().optional().openapi({ description: "1 only." }),
    stream: z.boolean().nullable().optional(),
    stream_options: z
      .object({
        include_usage: z.boolean().optional(),
        include_obfuscation: z.boolean().optional(),
      })
      .strict()
      .nullable()
      .optional(),
    response_format: ResponseFormat.nullable().optional(),
  })
  .loose()
  .openapi("ChatCompletionRequest", {
    example: {
      model: "hermes",
      messages: [{ role: "user", content: "Summarise today's move in NVDA in one sentence." }],
      max_tokens: 64,
    },
  });
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

export const CompletionUsage = z
  .object({
    prompt_tokens: z.number().int(),
    completion_tokens: z.number().int(),
    total_tokens: z.number().int(),
  })
  .openapi("CompletionUsage");
export type CompletionUsage = z.infer<typeof CompletionUsage>;

const FinishReason = z.enum(["stop", "length"]);

export const ChatCompletion = z
  .object({
    id: z.string().openapi({ example: "chatcmpl-0b6f5a4e-9b8e-4c39-8a52-2b6a8d2f1f7c" }),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.enum(MODEL_IDS),
    /** The model the GPU node ran. */
    system_fingerprint: z.string(),
    choices: z.array(
      z.object({
        index: z.literal(0),
        message: z.object({
          role: z.literal("assistant"),
          content: z.string(),
          refusal: z.null(),
        }),
        logprobs: z.null(),
        finish_reason: FinishReason,
      }),
    ),
    usage: CompletionUsage,
  })
  .openapi("ChatCompletion");
export type ChatCompletion = z.infer<typeof ChatCompletion>;

export const ChatCompletionChunk = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion.chunk"),
    created: z.number().int(),
    model: z.enum(MODEL_IDS),
    system_fingerprint: z.string().optional(),
    choices: z.array(
      z.object({
        index: z.literal(0),
        delta: z.object({
          role: z.literal("assistant").optional(),
          content: z.string().optional(),
        }),
        logprobs: z.null(),
        finish_reason: FinishReason.nullable(),
      }),
    ),
    usage: CompletionUsage.nullable().optional(),
  })
  .openapi("ChatCompletionChunk");
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunk>;

export const ModelObject = z
  .object({
    id: z.enum(MODEL_IDS),
    object: z.literal("model"),
    /** Unix seconds: when the weights we serve by default were published. */
    created: z.number().int(),
    owned_by: z.string(),
    /** Tokens of prompt + answer the model's context holds, as the GPU node reports it. */
    context_length: z.number().int().nullable(),
    /** The GPU node's state for the model; "unreachable" when the node did not answer. */
    state: z.enum(["loading", "ready", "error", "missing", "disabled", "unreachable"]),
    /** True when the model can answer now. */
    ready: z.boolean(),
  })
  .openapi("Model");
export type ModelObject = z.infer<typeof ModelObject>;

export const ModelList = z
  .object({ object: z.literal("list"), data: z.array(ModelObject) })
  .openapi("ModelList");
export type ModelList = z.infer<typeof ModelList>;

export const OpenAiError = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      param: z.string().nullable(),
      code: z.string(),
    }),
  })
  .openapi("OpenAIError");

/** Error responses of the /v1 routes, in OpenAI's envelope, for the OpenAPI document. */
export function openAiErrorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Malformed JSON, a bad or unsupported field (param names it)",
    401: "Missing or invalid API key",
    404: "Unknown model",
    413: "Body too large",
    415: "Content-Type is not application/json",
    422: "A token budget too small for any valid JSON (budget_too_small)",
    429: "GPU node busy (Retry-After)",
    503: "GPU node unavailable, model not loaded, database unavailable",
    504: "GPU node timed out",
  };
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: descriptions[s] ?? "Error",
        content: { "application/json": { schema: OpenAiError } },
      },
    ]),
  );
}
