/**
 * /v1 errors: every status through the openai SDK (its error classes, OpenAI's envelope), and
 * malformed bodies over raw HTTP (always a 4xx in OpenAI's shape, never a 5xx). Run on every
 * target like the other shared cases.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GPU_ROUTES } from "../../../gpu-node/contract/index.ts";
import { createEdgeHarness, type EdgeHarness, type EdgeTarget } from "../edge.ts";
import { sdkClient } from "./openai.happy.ts";

const user = (content: string) => [{ role: "user" as const, content }];

/** OpenAI's envelope and nothing else: no seed fields, no stack. */
async function expectOpenAiError(res: Response, status: number, code: string, param?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(["error"]);
  const error = body.error as Record<string, unknown>;
  expect(Object.keys(error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(error.code).toEqual(code);
  if (param !== undefined) expect(error.param).toBe(param);
  expect(typeof error.message).toBe("string");
  expect(typeof error.type).toBe("string");
  expect(JSON.stringify(body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
  return error;
}

/** The SDK's error for a call, checked against OpenAI's envelope. */
async function sdkError(call: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await call.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err as InstanceType<typeof OpenAI.APIError>;
}

export function openAiErrorCases(target: EdgeTarget): void {
  describe(`/v1 errors and malformed bodies (${target.label})`, () => {
    let h: EdgeHarness;
    let client: OpenAI;
    beforeAll(async () => {
      h = await createEdgeHarness({ target });
      client = sdkClient(h);
    });
    afterAll(async () => {
      await h?.close();
    });

    it("400 for fields that would change the answer, naming them (tools, logprobs, n: 2, ...)", async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ tools: [{ type: "function", function: { name: "f", parameters: {} } }] }, "tools"],
        [{ tool_choice: "required" }, "tool_choice"],
        [{ logprobs: true }, "logprobs"],
        [{ top_logprobs: 3 }, "top_logprobs"],
        [{ logit_bias: { "50256": -100 } }, "logit_bias"],
        [{ presence_penalty: 0.5 }, "presence_penalty"],
        [{ frequency_penalty: 1 }, "frequency_penalty"],
        [{ modalities: ["text", "audio"] }, "modalities"],
        [{ n: 2 }, "n"],
        [{ reasoning_effort: "high" }, "reasoning_effort"],
        [{ brand_new_field: 1 }, "brand_new_field"],
      ];
      for (const [extra, param] of cases) {
        const err = await sdkError(
          client.chat.completions.create({
            model: "hermes",
            messages: user("x"),
            ...extra,
          } as never),
        );
        expect(err, param).toBeInstanceOf(OpenAI.BadRequestError);
        expect(err.status).toBe(400);
        expect(err.code).toBe("unsupported_parameter");
        expect(err.param).toBe(param);
        expect(err.type).toBe("invalid_request_error");
        expect(err.message).toContain(param);
      }
    });

    it("the neutral values of refused fields, and the ignored fields, are accepted", async () => {
      const done = await client.chat.completions.create({
        model: "hermes",
        messages: user("x"),
        n: 1,
        logprobs: false,
        presence_penalty: 0,
        frequency_penalty: 0,
        tools: [],
        tool_choice: "none",
        user: "u",
        metadata: { a: "b" },
        store: false,
        service_tier: "auto",
        parallel_tool_calls: true,
      });
      expect(done.choices[0]?.message.content).toBe("Echo: x");
    });

    it("404 for an unknown model (model_not_found, param model), streamed or not", async () => {
      for (const stream of [false, true]) {
        const err = await sdkError(
          client.chat.completions.create({ model: "gpt-4o", messages: user("x"), stream }),
        );
        expect(err).toBeInstanceOf(OpenAI.NotFoundError);
        expect(err.code).toBe("model_not_found");
        expect(err.param).toBe("model");
        expect(err.message).toContain("gpt-4o");
      }
    });

    it("429 with Retry-After when the GPU node's queue is full, streamed or not", async () => {
      h.gpu.options.queueFull = true;
      try {
        for (const stream of [false, true]) {
          const err = await sdkError(
            client.chat.completions.create({ model: "hermes", messages: user("x"), stream }),
          );
          expect(err).toBeInstanceOf(OpenAI.RateLimitError);
          expect(err.code).toBe("queue_full");
          expect(err.headers?.get("retry-after")).toBe("3");
        }
      } finally {
        h.gpu.options.queueFull = false;
      }
    });

    it("503 when the model is not loaded (and nothing is recorded)", async () => {
      h.gpu.options.phi3Loaded = false;
      try {
        const before = (await h.recorded()).log.length;
        const err = await sdkError(
          client.chat.completions.create({ model: "phi3", messages: user("AAPL?") }),
        );
        expect(err).toBeInstanceOf(OpenAI.InternalServerError);
        expect(err.status).toBe(503);
        expect(err.code).toBe("model_not_loaded");
        expect((await h.recorded()).log.length).toBe(before);
      } finally {
        h.gpu.options.phi3Loaded = true;
      }
    });

    it("the node's refusals of a schema pass through: 400 unsupported_schema, 422 budget_too_small", async () => {
      const schema = { type: "object", properties: { id: { type: "string", pattern: "^a" } } };
      const refused = await sdkError(
        client.chat.completions.create({
          model: "hermes",
          messages: user("x"),
          response_format: { type: "json_schema", json_schema: { name: "s", schema } },
        }),
      );
      expect(refused.status).toBe(400);
      expect(refused.code).toBe("unsupported_schema");
      const small = await sdkError(
        client.chat.completions.create({
          model: "phi3",
          messages: user("x"),
          max_tokens: 1,
          stream: true,
          response_format: {
            type: "json_schema",
            json_schema: {
              name: "s",
              schema: { type: "object", properties: { a: { type: "string" } }, required: ["a"] },
            },
          },
        }),
      );
      expect(small).toBeInstanceOf(OpenAI.UnprocessableEntityError);
      expect(small.code).toBe("budget_too_small");
    });

    it("an error after the stream started is an OpenAI error event, and no [DONE]", async () => {
      h.gpu.options.streamFailAfter = 2;
      try {
        const stream = await client.chat.completions.create({
          model: "hermes",
          messages: user("one two three four five"),
          stream: true,
        });
        const pieces: string[] = [];
        const err = await sdkError(
          (async () => {
            for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta.content ?? "");
          })(),
        );
        expect(pieces.join("")).toBe("Echo: one");
        expect(err.message).toContain("shutting down");
        expect(err.code).toBe("shutting_down");

        const res = await h.post("/v1/chat/completions", {
          model: "hermes",
          messages: user("one two three"),
          stream: true,
        });
        expect(res.status).toBe(200);
        const events = (await res.text()).split("\n\n").filter(Boolean);
        expect(events).not.toContain("data: [DONE]");
        expect(JSON.parse(events.at(-1)?.slice(6) ?? "")).toMatchObject({
          error: { code: "shutting_down", type: "service_unavailable" },
        });
      } finally {
        h.gpu.options.streamFailAfter = undefined;
      }
    });

    it("a phi3 proposal whose stream fails is not recorded", async () => {
      h.gpu.options.streamFailAfter = 1;
      try {
        const before = (await h.recorded()).log.length;
        const stream = await client.chat.completions.create({
          model: "phi3",
          messages: user("AAPL?"),
          stream: true,
        });
        await sdkError(
          (async () => {
            for await (const _ of stream) {
              // read to the end
            }
          })(),
        );
        expect((await h.recorded()).log.length).toBe(before);
      } finally {
        h.gpu.options.streamFailAfter = undefined;
      }
    });

    it.each([
      [
        "a tool message",
        { messages: [{ role: "tool", content: "x", tool_call_id: "1" }] },
        "messages[0].role",
      ],
      ["an unknown role", { messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
      ["content as a number", { messages: [{ role: "user", content: 42 }] }, "messages[0].content"],
      ["content null", { messages: [{ role: "user", content: null }] }, "messages[0].content"],
      [
        "an image part",
        {
          messages: [
            {
              role: "user",
              content: [{ type: "image_url", image_url: { url: "http://x/y.png" } }],
            },
          ],
        },
        "messages[0].content",
      ],
      ["no messages", { messages: [] }, "messages"],
      ["messages not an array", { messages: "hello" }, "messages"],
      ["only a system message", { messages: [{ role: "system", content: "x" }] }, "messages"],
      ["a blank user message", { messages: [{ role: "user", content: "  " }] }, "messages"],
      ["huge max_tokens", { max_tokens: 1_000_000 }, "max_tokens"],
      ["max_tokens 0", { max_tokens: 0 }, "max_tokens"],
      ["fractional max_completion_tokens", { max_completion_tokens: 2.5 }, "max_completion_tokens"],
      ["max_tokens as a string", { max_tokens: "64" }, "max_tokens"],
      ["temperature 5", { temperature: 5 }, "temperature"],
      ["a negative seed", { seed: -1 }, "seed"],
      ["five stop sequences", { stop: ["a", "b", "c", "d", "e"] }, "stop"],
      ["stream not a boolean", { stream: "yes" }, "stream"],
      ["an unknown response_format", { response_format: { type: "xml" } }, "response_format.type"],
      [
        "json_schema without its schema",
        { response_format: { type: "json_schema", json_schema: { name: "x" } } },
        "response_format.json_schema.schema",
      ],
      ["no model", { model: undefined }, "model"],
    ])("400 for %s", async (_name, patch, param) => {
      const body = { model: "hermes", messages: user("x"), ...patch };
      const error = await expectOpenAiError(
        await h.post("/v1/chat/completions", body),
        400,
        expect.stringMatching(/^(invalid_parameter|unsupported_parameter)$/) as never,
        param,
      );
      expect(error.type).toBe("invalid_request_error");
    });

    it("400 for stop with a JSON answer, and for text from phi3", async () => {
      await expectOpenAiError(
        await h.post("/v1/chat/completions", {
          model: "phi3",
          messages: user("x"),
          stop: ["}"],
        }),
        400,
        "unsupported_parameter",
        "stop",
      );
      await expectOpenAiError(
        await h.post("/v1/chat/completions", {
          model: "phi3",
          messages: user("x"),
          response_format: { type: "text" },
        }),
        400,
        "unsupported_parameter",
        "response_format",
      );
    });

    it("400 for malformed JSON and for a body that is not an object", async () => {
      await expectOpenAiError(
        await h.post("/v1/chat/completions", '{"model": "hermes"'),
        400,
        "invalid_json",
      );
      await expectOpenAiError(
        await h.post("/v1/chat/completions", "[1, 2]"),
        400,
        "invalid_parameter",
      );
      await expectOpenAiError(
        await h.post("/v1/chat/completions", "null"),
        400,
        "invalid_parameter",
      );
    });

    it("415 for a body that is not JSON", async () => {
      const res = await h.request("/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "model=hermes",
      });
      await expectOpenAiError(res, 415, "unsupported_media_type");
    });

    it("404 and 405 on /v1 are OpenAI-shaped; the seed's paths keep their envelope", async () => {
      await expectOpenAiError(await h.post("/v1/completions", {}), 404, "not_found");
      const res = await h.request("/v1/chat/completions");
      await expectOpenAiError(res, 405, "method_not_allowed");
      expect(res.headers.get("allow")).toBe("POST");
      const seed = await h.request("/nope");
      expect(await seed.json()).toMatchObject({
        code: "not_found",
        request_id: expect.any(String),
      });
    });

    it("nothing reached the GPU node for any refused request above", () => {
      const v1Routes = new Set<string>(Object.values(GPU_ROUTES));
      expect(h.gpu.calls.every((c) => v1Routes.has(c.route))).toBe(true);
    });
  });

  describe(`/v1 errors that need settings: 401, 413, 504 (${target.label})`, () => {
    let h: EdgeHarness;
    beforeAll(async () => {
      h = await createEdgeHarness({
        target,
        env: {
          API_KEYS: "good-key",
          BODY_LIMIT_BYTES: "4096",
          GPU_TIMEOUT_MS: "300",
          REQUEST_TIMEOUT_MS: "1000",
        },
      });
    });
    afterAll(async () => {
      await h?.close();
    });

    it("401 without a key or with a wrong one, for both routes", async () => {
      for (const key of ["wrong-key"]) {
        const client = sdkClient(h, key);
        const err = await sdkError(client.models.list());
        expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
        expect(err.code).toBe("unauthorized");
        expect(err.type).toBe("authentication_error");
        const chat = await sdkError(
          client.chat.completions.create({ model: "hermes", messages: user("x") }),
        );
        expect(chat).toBeInstanceOf(OpenAI.AuthenticationError);
      }
      const res = await h.request("/v1/models");
      await expectOpenAiError(res, 401, "unauthorized");
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
    });

    it("413 for a body over BODY_LIMIT_BYTES", async () => {
      const err = await sdkError(
        sdkClient(h).chat.completions.create({ model: "hermes", messages: user("x".repeat(5000)) }),
      );
      expect(err.status).toBe(413);
      expect(err.code).toBe("payload_too_large");
    });

    it("504 when the GPU node does not answer in GPU_TIMEOUT_MS, or its stream's first piece in REQUEST_TIMEOUT_MS", async () => {
      h.gpu.options.delayMs = 5000;
      try {
        const err = await sdkError(
          sdkClient(h).chat.completions.create({ model: "hermes", messages: user("x") }),
        );
        expect(err.status).toBe(504);
        expect(err.code).toBe("gpu_node_timeout");
        // Streamed: nothing was sent yet, so it is still a plain 504.
        const streamed = await sdkError(
          sdkClient(h).chat.completions.create({
            model: "hermes",
            messages: user("x"),
            stream: true,
          }),
        );
        expect(streamed.status).toBe(504);
        expect(streamed.code).toBe("gpu_node_timeout");
      } finally {
        h.gpu.options.delayMs = 0;
      }
    });

    it("a stream may outlast REQUEST_TIMEOUT_MS while pieces keep coming; a gap longer than it ends it with a 504 event", async () => {
      const client = sdkClient(h);
      // 10 pieces 250 ms apart: about 2.5 s in all, more than REQUEST_TIMEOUT_MS (1 s).
      h.gpu.options.streamDelayMs = 250;
      try {
        const stream = await client.chat.completions.create({
          model: "hermes",
          messages: user("a b c d e f g h i"),
          stream: true,
        });
        let text = "";
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
        expect(text).toBe("Echo: a b c d e f g h i");
      } finally {
        h.gpu.options.streamDelayMs = 0;
      }
      h.gpu.options.streamDelayMs = 3000;
      try {
        const stream = await client.chat.completions.create({
          model: "hermes",
          messages: user("a b c"),
          stream: true,
        });
        let text = "";
        const err = await sdkError(
          (async () => {
            for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
          })(),
        );
        expect(text).toBe("Echo:");
        expect(err.code).toBe("gpu_node_timeout");
      } finally {
        h.gpu.options.streamDelayMs = 0;
      }
    });
  });
}
