/** planChat: a /v1 body -> what the edge asks the GPU node (pure; no server). */
import { describe, expect, it } from "vitest";
import { ApiError } from "../../edge/errors.ts";
import {
  DEFAULT_MAX_TOKENS,
  IGNORED_FIELDS,
  isTradeSchema,
  planChat,
  REFUSED_FIELDS,
} from "../../edge/services/openai/plan.ts";
import { ChatCompletionRequest } from "../../edge/services/openai/wire.ts";
import { TRADE_PROPOSAL_JSON_SCHEMA } from "../../gpu-node/contract/index.ts";

const plan = (body: Record<string, unknown>) =>
  planChat(
    ChatCompletionRequest.parse({
      model: "hermes",
      messages: [{ role: "user", content: "hi" }],
      ...body,
    }),
  );

function refusal(body: Record<string, unknown>): ApiError {
  try {
    plan(body);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error("expected a refusal");
}

describe("planChat", () => {
  it("hermes without response_format is free text, with the defaults", () => {
    expect(plan({})).toEqual({
      model: "hermes",
      messages: [{ role: "user", content: "hi" }],
      maxTokens: DEFAULT_MAX_TOKENS,
      stream: false,
      includeUsage: false,
      mode: { kind: "text" },
      responseFormat: null,
      ignored: [],
    });
  });

  it("joins text parts, maps developer to system, reads sampling, stop and both token names", () => {
    const p = plan({
      messages: [
        { role: "developer", content: "rules" },
        {
          role: "user",
          content: [
            { type: "text", text: "a" },
            { type: "text", text: "b" },
          ],
        },
      ],
      max_tokens: 10,
      max_completion_tokens: 20,
      temperature: 0.7,
      top_p: 0.9,
      seed: 3,
      stop: "END",
      stream: true,
      stream_options: { include_usage: true },
      user: "u",
    });
    expect(p.messages).toEqual([
      { role: "system", content: "rules" },
      { role: "user", content: "ab" },
    ]);
    expect(p.maxTokens).toBe(20);
    expect(p.sampling).toEqual({ temperature: 0.7, top_p: 0.9, seed: 3 });
    expect(p.stop).toEqual(["END"]);
    expect(p.includeUsage).toBe(true);
    expect(p.ignored).toEqual(["user"]);
  });

  it("nulls mean absent", () => {
    const p = plan({
      temperature: null,
      stop: null,
      n: null,
      max_tokens: null,
      response_format: null,
    });
    expect(p.sampling).toBeUndefined();
    expect(p.stop).toBeUndefined();
    expect(p.maxTokens).toBe(DEFAULT_MAX_TOKENS);
  });

  it("phi3: absent, json_object and the trade schema (keys in any order) are the proposal path", () => {
    const messages = [
      { role: "user", content: "first" },
      { role: "assistant", content: "x" },
      { role: "user", content: "TSLA, adjust?" },
    ];
    const reordered = Object.fromEntries(Object.entries(TRADE_PROPOSAL_JSON_SCHEMA).reverse());
    for (const response_format of [
      undefined,
      { type: "json_object" },
      { type: "json_schema", json_schema: { name: "t", schema: reordered } },
    ]) {
      expect(plan({ model: "phi3", messages, response_format }).mode).toEqual({
        kind: "proposal",
        prompt: "TSLA, adjust?",
      });
    }
  });

  it("phi3 or hermes with another schema is the any-schema path; hermes json_object is {type: object}", () => {
    const schema = { type: "object", properties: { a: { type: "string" } } };
    const json_schema = { name: "s", schema };
    expect(
      plan({ model: "phi3", response_format: { type: "json_schema", json_schema } }).mode,
    ).toEqual({
      kind: "json",
      schema,
      // Phi-3 takes one prompt: the last user message.
      prompt: "hi",
    });
    expect(plan({ response_format: { type: "json_schema", json_schema } }).mode).toEqual({
      kind: "json",
      schema,
    });
    expect(plan({ response_format: { type: "json_object" } }).mode).toEqual({
      kind: "json",
      schema: { type: "object" },
    });
    // The trade schema on hermes is plain JSON output, not a recorded proposal.
    expect(
      plan({
        response_format: {
          type: "json_schema",
          json_schema: { name: "t", schema: TRADE_PROPOSAL_JSON_SCHEMA },
        },
      }).mode.kind,
    ).toBe("json");
  });

  it("isTradeSchema: a changed enum, an extra key or a dropped required key is another schema", () => {
    const t = structuredClone(TRADE_PROPOSAL_JSON_SCHEMA) as unknown as Record<string, unknown>;
    expect(isTradeSchema(t)).toBe(true);
    expect(isTradeSchema({ ...t, description: "x" })).toBe(false);
    expect(isTradeSchema({ ...t, required: ["ticker"] })).toBe(false);
    const props = structuredClone(t.properties) as Record<string, Record<string, unknown>>;
    props.action = { type: "string", enum: ["adjust", "pass"] };
    expect(isTradeSchema({ ...t, properties: props })).toBe(false);
  });

  it.each(Object.keys(REFUSED_FIELDS))(
    "refuses %s with a non-neutral value, accepts null",
    (field) => {
      const err = refusal({ [field]: field === "modalities" ? ["audio"] : { on: true } });
      expect(err.code).toBe("unsupported_parameter");
      expect(err.details.param).toBe(field);
      expect(plan({ [field]: null }).mode.kind).toBe("text");
    },
  );

  it.each(IGNORED_FIELDS)("accepts and ignores %s", (field) => {
    expect(plan({ [field]: "anything" }).ignored).toEqual([field]);
  });

  it("refuses n other than 1, unknown models (404), and unknown fields", () => {
    expect(refusal({ n: 2 }).details.param).toBe("n");
    expect(refusal({ n: 0 }).details.param).toBe("n");
    const unknown = refusal({ model: "gpt-4" });
    expect(unknown.code).toBe("model_not_found");
    expect(unknown.status).toBe(404);
    expect(refusal({ temprature: 1 }).message).toBe(
      "Unrecognized request argument supplied: temprature",
    );
  });

  it("refuses stop on JSON answers, text on phi3, json_schema without a schema, NUL in content", () => {
    expect(refusal({ stop: "x", response_format: { type: "json_object" } }).details.param).toBe(
      "stop",
    );
    expect(refusal({ model: "phi3", stop: "x" }).details.param).toBe("stop");
    expect(refusal({ model: "phi3", response_format: { type: "text" } }).details.param).toBe(
      "response_format",
    );
    expect(
      refusal({ response_format: { type: "json_schema", json_schema: { name: "x" } } }).details
        .param,
    ).toBe("response_format.json_schema.schema");
    expect(refusal({ messages: [{ role: "user", content: "a\u0000b" }] }).details.param).toBe(
      "messages[0].content",
    );
    expect(refusal({ messages: [{ role: "assistant", content: "a" }] }).details.param).toBe(
      "messages",
    );
  });
});
