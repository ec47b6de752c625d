/**
 * Random JSON Schemas of the supported subset (fast-check): nested objects with optional keys,
 * enums with unicode and quotes, arrays with bounds, strings with length bounds, numbers and
 * integers with fractional and negative (exclusive) bounds, anyOf, type arrays, const, $defs/$ref.
 */
import fc from "fast-check";

type Schema = Record<string, unknown>;

const ENUM_POOL = [
  "buy",
  "sell",
  "é",
  "📈 up",
  'say "hi"',
  "back\\slash",
  "tab\there",
  "",
  "ü-ß",
  "日本",
];
const KEY_POOL = ["ticker", "qty", "price", "note", "side", "é_key", 'q"uote', "a b", "steps", "x"];

const quarter = fc.integer({ min: -40, max: 40 }).map((n) => n / 4);
const tenth = fc.integer({ min: -100, max: 100 }).map((n) => n / 10);

const numberSchema: fc.Arbitrary<Schema> = fc
  .tuple(
    fc.constantFrom("number", "integer"),
    fc.oneof(quarter, tenth, fc.constantFrom(0, 1, -1, 0.3, 1 / 3)),
    fc.oneof(
      fc.constant(undefined),
      fc.integer({ min: 1, max: 80 }).map((n) => n / 4),
    ),
    fc.boolean(),
    fc.boolean(),
    fc.constantFrom("both", "lo", "hi", "none"),
  )
  .map(([type, lo, width, exLo, exHi, which]) => {
    const s: Schema = { type };
    // Integers get room for at least one integer inside.
    const hi = lo + (width ?? 1) + (type === "integer" ? 2 : 0);
    if (which === "both" || which === "lo") s[exLo ? "exclusiveMinimum" : "minimum"] = lo;
    if (which === "both" || which === "hi") s[exHi ? "exclusiveMaximum" : "maximum"] = hi;
    return s;
  });

const stringSchema: fc.Arbitrary<Schema> = fc
  .tuple(fc.option(fc.integer({ min: 0, max: 3 })), fc.option(fc.integer({ min: 0, max: 6 })))
  .map(([min, extra]) => {
    const s: Schema = { type: "string" };
    if (min !== null) s.minLength = min;
    if (extra !== null) s.maxLength = (min ?? 0) + extra;
    return s;
  });

const enumSchema: fc.Arbitrary<Schema> = fc.oneof(
  fc
    .uniqueArray(
      fc.oneof(fc.constantFrom(...ENUM_POOL), fc.string({ unit: "grapheme", maxLength: 4 })),
      {
        minLength: 1,
        maxLength: 4,
      },
    )
    .map((values) => ({ type: "string", enum: values })),
  fc
    .uniqueArray(
      fc.oneof(fc.constantFrom(...ENUM_POOL), fc.integer({ min: -5, max: 5 }), fc.constant(null)),
      {
        minLength: 1,
        maxLength: 4,
        selector: (v) => JSON.stringify(v),
      },
    )
    .map((values) => ({ enum: values })),
  fc.constantFrom(...ENUM_POOL, 3, true, null).map((value) => ({ const: value })),
);

const leaf: fc.Arbitrary<Schema> = fc.oneof(
  { weight: 3, arbitrary: stringSchema },
  { weight: 3, arbitrary: numberSchema },
  { weight: 3, arbitrary: enumSchema },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      { type: "boolean" },
      { type: "null" },
      { type: ["string", "null"] },
      { type: ["integer", "boolean"], minimum: -3, maximum: 3 },
    ),
  },
);

export const schemaArbitrary: fc.Arbitrary<Schema> = fc.letrec<{
  value: Schema;
  object: Schema;
  array: Schema;
  anyOf: Schema;
}>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 5, arbitrary: leaf },
    { weight: 2, arbitrary: tie("object") },
    { weight: 2, arbitrary: tie("array") },
    { weight: 1, arbitrary: tie("anyOf") },
  ),
  object: fc
    .uniqueArray(fc.tuple(fc.constantFrom(...KEY_POOL), tie("value"), fc.boolean()), {
      maxLength: 4,
      selector: ([k]) => k,
    })
    .map((entries) => {
      const s: Schema = {
        type: "object",
        properties: Object.fromEntries(entries.map(([k, v]) => [k, v])),
      };
      const required = entries.filter(([, , r]) => r).map(([k]) => k);
      if (required.length > 0) s.required = required;
      if (entries.length % 2 === 0) s.additionalProperties = false;
      return s;
    }),
  array: fc
    .tuple(tie("value"), fc.integer({ min: 0, max: 2 }), fc.option(fc.integer({ min: 0, max: 3 })))
    .map(([items, min, extra]) => {
      const s: Schema = { type: "array", items };
      if (min > 0) s.minItems = min;
      if (extra !== null) s.maxItems = min + extra;
      return s;
    }),
  anyOf: fc.array(tie("value"), { minLength: 2, maxLength: 3 }).map((anyOf) => ({ anyOf })),
})).value;

/** A root: mostly objects (what clients send), sometimes with a definition used by $ref. */
export const rootSchemaArbitrary: fc.Arbitrary<Schema> = fc.oneof(
  { weight: 5, arbitrary: schemaArbitrary.filter((s) => s.type === "object") },
  { weight: 2, arbitrary: schemaArbitrary },
  {
    weight: 2,
    arbitrary: fc.tuple(schemaArbitrary, leaf, fc.boolean()).map(([inner, def, required]) => ({
      type: "object",
      description: "with a definition",
      $defs: { thing: def },
      properties: {
        first: { $ref: "#/$defs/thing" },
        second: inner,
        third: { $ref: "#/$defs/thing" },
      },
      ...(required ? { required: ["first", "second"] } : {}),
    })),
  },
);
