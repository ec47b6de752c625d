/**
 * The subset checker and compiler: what is refused (by name), what is not JSON Schema, the
 * languages' agreement with ajv on hand-picked texts, and the caches.
 */
import { describe, expect, it } from "vitest";
import { ServiceError } from "../../gpu-node/contract/errors.ts";
import { loadXGrammar } from "../../gpu-node/phi3/xgrammar.ts";
import {
  ByteNfa,
  ConstraintCache,
  SchemaCompiler,
  schemaLanguage,
} from "../../gpu-node/structured/index.ts";
import { validatorFor } from "./helpers.ts";

function refusal(schema: unknown): ServiceError {
  try {
    schemaLanguage(schema);
  } catch (error) {
    if (error instanceof ServiceError) return error;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(schema)}`);
}

const encode = (s: string) => new TextEncoder().encode(s);
const accepts = (schema: object, text: string) => {
  const nfa = new ByteNfa(schemaLanguage(schema).lang);
  const set = nfa.advance(nfa.initial(), encode(text));
  return set !== undefined && nfa.isComplete(set);
};

describe("the subset checker", () => {
  const obj = (inner: Record<string, unknown>) => ({
    type: "object",
    properties: { a: { type: "string", ...inner } },
  });
  it.each([
    ["not", { not: { type: "null" } }],
    ["pattern", { type: "string", pattern: "^a$" }],
    ["format", { type: "string", format: "email" }],
    ["uniqueItems", { type: "array", items: { type: "string" }, uniqueItems: true }],
    ["allOf", { allOf: [{ type: "string" }] }],
    ["oneOf", { oneOf: [{ type: "string" }, { type: "null" }] }],
    ["if", { type: "string", if: { minLength: 1 }, else: { maxLength: 3 } }],
    ["patternProperties", { type: "object", patternProperties: { "^a": { type: "string" } } }],
    ["propertyNames", { type: "object", propertyNames: { maxLength: 3 } }],
    ["minProperties", { type: "object", minProperties: 1 }],
    ["maxProperties", { type: "object", maxProperties: 1 }],
    ["dependentRequired", { type: "object", dependentRequired: { a: ["b"] } }],
    ["prefixItems", { type: "array", prefixItems: [{ type: "string" }] }],
    ["contains", { type: "array", items: { type: "string" }, contains: { const: "a" } }],
    ["multipleOf", { type: "number", multipleOf: 0.5 }],
    ["$id", { $id: "https://example.com/s", type: "string" }],
    ["unevaluatedProperties", { type: "object", unevaluatedProperties: false }],
    ["additionalProperties", { type: "object", additionalProperties: true }],
    ["additionalProperties", { type: "object", additionalProperties: { type: "string" } }],
    ["x-custom", { type: "string", "x-custom": 1 }],
    ["$schema", { $schema: "http://json-schema.org/draft-04/schema#", type: "string" }],
  ])("refuses %s with a 400 that names it", (keyword, schema) => {
    const error = refusal(schema);
    expect(error.code).toBe("unsupported_schema");
    expect(error.status).toBe(400);
    expect(error.details.keyword).toBe(keyword);
    expect(error.message).toContain(`"${keyword}"`);
  });

  it("names where a nested keyword is", () => {
    const error = refusal({
      type: "object",
      properties: { list: { type: "array", items: obj({ pattern: "x" }) } },
    });
    expect(error.details).toEqual({
      keyword: "pattern",
      path: "#/properties/list/items/properties/a",
    });
  });

  it("refuses recursion, schemas that allow anything, and arrays without items", () => {
    const recursive = refusal({
      $defs: { node: { type: "object", properties: { next: { $ref: "#/$defs/node" } } } },
      $ref: "#/$defs/node",
    });
    expect(recursive.details.keyword).toBe("$ref");
    expect(recursive.message).toMatch(/recursive/);
    expect(refusal({ type: "object", properties: { a: true } }).details.keyword).toBe("true");
    expect(refusal({ type: "object", properties: { a: {} } }).details.keyword).toBe("type");
    expect(refusal({ type: "array" }).details.keyword).toBe("items");
    expect(refusal({ $ref: "#/properties/a" }).details.keyword).toBe("$ref");
    expect(refusal({ type: "string", maxLength: 5000 }).details.keyword).toBe("maxLength");
    // Keywords beside $ref would be an intersection: refused, the first one named.
    expect(
      refusal({ minLength: 3, $ref: "#/$defs/a", $defs: { a: { type: "string" } } }).details
        .keyword,
    ).toBe("minLength");
  });

  it("refuses a schema no value of the grammar satisfies", () => {
    for (const schema of [
      { type: "integer", minimum: 0.2, maximum: 0.8 },
      { type: "number", minimum: 1e17 },
      { type: "object", properties: {}, required: ["a"] },
      { type: "string", minLength: 3, maxLength: 2 },
      { enum: [1, 2], type: "string" },
    ]) {
      expect(refusal(schema).details.keyword, JSON.stringify(schema)).toBe("json_schema");
    }
  });

  it.each([
    [{ type: "strin" }],
    [{ type: "string", minLength: -1 }],
    [{ type: "object", required: "a" }],
    [{ type: "object", properties: [] }],
    [{ enum: "a" }],
    [{ anyOf: [] }],
    [{ $defs: { a: { type: "string" } }, $ref: "#/$defs/b" }],
    [[{ type: "string" }]],
    [{ $defs: { a: { type: "string" } }, $ref: "#/$defs/%E0%A4%A" }],
    ["not an object"],
  ])("answers 400 invalid_schema for a schema that is not JSON Schema: %j", (schema) => {
    const error = refusal(schema);
    expect(error.code).toBe("invalid_schema");
    expect(error.status).toBe(400);
  });
});

describe("the compiled languages", () => {
  it("ignores description and title and keeps keys in the schema's order", () => {
    const schema = {
      title: "T",
      description: "D",
      type: "object",
      properties: { b: { type: "boolean", description: "x" }, a: { type: "null" } },
      required: ["b"],
    };
    expect(accepts(schema, '{"b": true, "a": null}')).toBe(true);
    expect(accepts(schema, '{"b": false}')).toBe(true);
    expect(accepts(schema, '{"a": null, "b": true}')).toBe(false);
    expect(accepts(schema, '{"a": null}')).toBe(false);
  });

  const cases: [string, object, string, boolean][] = [
    ["maxLength counts characters", { type: "string", maxLength: 2 }, '"é📈"', true],
    ["maxLength 2 refuses 3 characters", { type: "string", maxLength: 2 }, '"abc"', false],
    ["minLength counts an escape as one", { type: "string", minLength: 2 }, '"\\u00e9a"', true],
    ["no lone surrogates in bounded strings", { type: "string", maxLength: 4 }, '"\\ud83d"', false],
    ["minItems", { type: "array", items: { type: "null" }, minItems: 2 }, "[null]", false],
    ["maxItems", { type: "array", items: { type: "null" }, maxItems: 2 }, "[null, null]", true],
    [
      "maxItems over",
      { type: "array", items: { type: "null" }, maxItems: 2 },
      "[null, null, null]",
      false,
    ],
    ["unbounded array", { type: "array", items: { type: "integer" } }, "[1, 2, 3, 4, 5]", true],
    ["empty array", { type: "array", items: { type: "integer" } }, "[]", true],
    ["enum with quotes", { enum: ['say "hi"', 3, null] }, '"say \\"hi\\""', true],
    ["const object", { const: { a: [1, "x"] } }, '{"a": [1, "x"]}', true],
    ["anyOf", { anyOf: [{ type: "integer" }, { type: "string", maxLength: 1 }] }, '"a"', true],
    ["type array", { type: ["integer", "null"], maximum: -1 }, "0", false],
    ["type array null", { type: ["integer", "null"], maximum: -1 }, "null", true],
    ["exclusive fraction", { type: "number", exclusiveMaximum: 0.5 }, "0.5", false],
    ["below exclusive fraction", { type: "number", exclusiveMaximum: 0.5 }, "0.499", true],
    ["negative minimum", { type: "number", minimum: -2.5 }, "-2.5", true],
    ["below negative minimum", { type: "number", minimum: -2.5 }, "-2.51", false],
    [
      "$ref",
      {
        $defs: { p: { type: "integer", minimum: 1 } },
        type: "object",
        properties: { a: { $ref: "#/$defs/p" } },
        required: ["a"],
      },
      '{"a": 0}',
      false,
    ],
  ];
  it.each(cases)("%s (%j, %s) -> %s, as ajv says", (_name, schema, text, ok) => {
    expect(accepts(schema, text)).toBe(ok);
    if (ok) expect(validatorFor(schema)(JSON.parse(text))).toBe(true);
  });
});

describe("caches", () => {
  it("compiles a schema once per hash, and the per-model LRU stays bounded", async () => {
    const compiler = new SchemaCompiler(2);
    const a = compiler.compile({ type: "string" });
    expect(compiler.compile({ type: "string" })).toBe(a);
    // Key order is part of the schema (it fixes the output's key order).
    const ab = { type: "object", properties: { a: { type: "null" }, b: { type: "null" } } };
    const ba = { type: "object", properties: { b: { type: "null" }, a: { type: "null" } } };
    expect(compiler.compile(ab).hash).not.toBe(compiler.compile(ba).hash);

    const xgrammar = await loadXGrammar();
    const vocab = Array.from(
      { length: 256 },
      (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`,
    );
    const info = await xgrammar.TokenizerInfo.createTokenizerInfo(
      ["<eos>", ...vocab],
      "byte_fallback",
      false,
      257,
      [0],
    );
    const bytes = [undefined, ...vocab.map((_, b) => Uint8Array.of(b))];
    const cache = new ConstraintCache({
      xgrammar,
      tokenizerInfo: info,
      vocabulary: { bytes },
      capacity: 2,
    });
    const first = await cache.lease({ type: "boolean" });
    expect(first.constraint.minTokens).toBe(4); // "true"
    const again = await cache.lease({ type: "boolean" });
    expect(again.constraint).toBe(first.constraint);
    await (await cache.lease({ type: "null" })).release();
    await (await cache.lease({ type: "integer" })).release();
    expect(cache.size).toBe(2);
    // Evicted while leased: still usable until released.
    const matcher = await xgrammar.GrammarMatcher.createGrammarMatcher(first.constraint.grammar);
    expect(matcher.acceptToken(1 + "t".charCodeAt(0))).toBe(true);
    matcher.dispose();
    first.release();
    again.release();
    await expect(cache.lease({ type: "string", pattern: "x" })).rejects.toThrow(/pattern/);
    await cache.dispose();
    info.dispose();
  });
});
