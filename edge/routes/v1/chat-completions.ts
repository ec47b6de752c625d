/** POST /v1/chat/completions (OpenAI-compatible), whole or streamed as server-sent events. */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../deps.ts";
import { createChatCompletion, streamChatCompletion } from "../../services/openai/chat.ts";
import { planChat } from "../../services/openai/plan.ts";
import {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  openAiErrorResponses,
} from "../../services/openai/wire.ts";

const headers = {
  "X-Transaction-Id": {
    description:
      "model phi3, trade proposal: the recorded proposal's id (the completion id is " +
      "chatcmpl-<transaction_id>); use it with POST /feedback/phi3/.",
    schema: { type: "string" as const, format: "uuid" },
  },
};

export const chatCompletionsRoute = createRoute({
  method: "post",
  path: "/v1/chat/completions",
  tags: ["openai"],
  summary: "Chat completion (OpenAI-compatible)",
  description:
    'model "hermes": free text, or JSON for response_format json_object / json_schema. ' +
    'model "phi3": a recorded trade proposal (response_format absent, json_object, or the trade ' +
    "schema), or JSON for another json_schema. Every JSON answer satisfies its schema. " +
    "stream: true answers text/event-stream chat.completion.chunk events ending in data: [DONE]. " +
    "Fields OpenAI defines that would change the answer (tools, logprobs, n > 1, penalties, ...) " +
    "are a 400 naming them; user, metadata, store, service_tier, parallel_tool_calls, " +
    "prompt_cache_key, prompt_cache_retention and safety_identifier are accepted and ignored. " +
    "Errors: OpenAI's {error: {message, type, param, code}}.",
  request: {
    body: { content: { "application/json": { schema: ChatCompletionRequest } }, required: true },
  },
  responses: {
    200: {
      description: "A chat.completion, or (stream: true) server-sent chat.completion.chunk events",
      headers,
      content: {
        "application/json": { schema: ChatCompletion },
        "text/event-stream": {
          schema: z.string().openapi({
            description: `Lines "data: <ChatCompletionChunk JSON>", then "data: [DONE]".`,
          }),
        },
      },
    },
    ...openAiErrorResponses(400, 401, 404, 413, 415, 422, 429, 503, 504),
  },
});

export function registerChatCompletions(app: OpenAPIHono<AppEnv>): void {
  // Streamed answers are text/event-stream (no typed body): list the chunk's schema for clients.
  app.openAPIRegistry.register("ChatCompletionChunk", ChatCompletionChunk);
  app.openapi(chatCompletionsRoute, async (c) => {
    const plan = planChat(c.req.valid("json"));
    if (plan.ignored.length > 0) {
      c.var.ctx.logger.debug(
        { request_id: c.var.ctx.requestId, ignored: plan.ignored },
        "ignored request fields",
      );
    }
    if (!plan.stream) {
      const answer = await createChatCompletion({ ctx: c.var.ctx, input: plan });
      if (answer.transactionId) c.header("X-Transaction-Id", answer.transactionId);
      return c.json(answer.completion, 200);
    }
    // A stream is bounded per wait, not in total: only the client's connection ends it early.
    const ctx = { ...c.var.ctx, signal: c.req.raw.signal };
    const stream = await streamChatCompletion({ ctx, input: plan });
    if (stream.transactionId) c.header("X-Transaction-Id", stream.transactionId);
    c.header("content-type", "text/event-stream; charset=utf-8");
    c.header("cache-control", "no-cache");
    c.header("x-accel-buffering", "no");
    // zod-openapi types JSON and text bodies only; a stream has no typed form, hence the cast.
    return c.body(stream.body, 200) as never;
  });
}
