/**
 * The output language of Phi-3, derived from the contract's JSON schema.
 *
 * Why not xgrammar's own JSON-schema compiler: it accepts `confidence` 1.5 (facts.md), and it
 * cannot tell us how far the end is. We support exactly the schema subset the contract uses and
 * refuse anything else loudly, so a schema change cannot silently loosen the output.
 *
 * The layout is fixed, one line, Python's `json.dumps` separators (`", "` and `": "`), keys in the
 * schema's order, optional keys may be left out, and one optional leading space (Llama-style
 * tokenizers like to start an answer with a `▁` token; the space is dropped from the raw text).
 */
import { TRADE_PROPOSAL_JSON_SCHEMA } from "../contract/index.ts";
import {
  alt,
  bytes,
  JSON_STRING_CHAR,
  type Lang,
  lit,
  loop,
  opt,
  rep,
  rule,
  seq,
  toEbnf,
} from "../structured/language.ts";

/** Digits allowed in a number's integer part and fraction: keeps every number finite and exact
 * enough, and gives the budget planner a bounded worst case. */
export const MAX_INT_DIGITS = 15;
export const MAX_FRACTION_DIGITS = 15;

const digit = bytes([0x30, 0x39]);
const hex = bytes([0x30, 0x39], [0x41, 0x46], [0x61, 0x66]);

/** Written as `"\"" json_string_sub` with a right-recursive tail (see `loop`): the same language
 * as `"\"" (char | "\\" escape)* "\""`, which xgrammar masks hundreds of times slower
 * (bench/constrained.ts). */
const jsonString = rule(
  "json_string",
  seq(
    lit('"'),
    loop(
      "json_string_sub",
      [
        JSON_STRING_CHAR,
        seq(
          lit("\\"),
          alt(
            bytes(
              [0x22, 0x22],
              [0x2f, 0x2f],
              [0x5c, 0x5c],
              [0x62, 0x62],
              [0x66, 0x66],
              [0x6e, 0x6e],
              [0x72, 0x72],
              [0x74, 0x74],
            ),
            seq(lit("u"), rep(hex, 4, 4)),
          ),
        ),
      ],
      lit('"'),
    ),
  ),
);

/** A plain decimal: no exponent (so never Infinity), bounded digits. */
const jsonNumber = rule(
  "json_number",
  seq(
    opt(lit("-")),
    alt(lit("0"), seq(bytes([0x31, 0x39]), rep(digit, 0, MAX_INT_DIGITS - 1))),
    opt(seq(lit("."), rep(digit, 1, MAX_FRACTION_DIGITS))),
  ),
);

/** Exactly the numbers in [0, 1]: 0, 0.x, 1, 1.000; not -0, not 1.0001. */
const unitInterval = rule(
  "unit_interval",
  alt(
    seq(lit("0"), opt(seq(lit("."), rep(digit, 1, MAX_FRACTION_DIGITS)))),
    seq(lit("1"), opt(seq(lit("."), rep(lit("0"), 1, MAX_FRACTION_DIGITS)))),
  ),
);

type JsonSchemaNode = Readonly<Record<string, unknown>>;

function unsupported(what: string): never {
  throw new Error(`unsupported JSON schema construct for the Phi-3 grammar: ${what}`);
}

function valueLanguage(name: string, schema: JsonSchemaNode): Lang {
  const known = new Set(["type", "enum", "description", "minimum", "maximum"]);
  for (const key of Object.keys(schema)) {
    if (!known.has(key)) unsupported(`"${key}" in property "${name}"`);
  }
  const types = Array.isArray(schema.type) ? (schema.type as unknown[]) : [schema.type];
  const nullable = types.includes("null");
  const main = types.filter((t) => t !== "null");
  if (main.length !== 1) unsupported(`type ${JSON.stringify(schema.type)} of "${name}"`);
  let value: Lang;
  if (main[0] === "string") {
    if (schema.minimum !== undefined || schema.maximum !== undefined) unsupported("string bounds");
    if (schema.enum !== undefined) {
      if (!Array.isArray(schema.enum) || !schema.enum.every((v) => typeof v === "string")) {
        unsupported(`enum of "${name}"`);
      }
      value = alt(...(schema.enum as string[]).map((v) => lit(JSON.stringify(v))));
    } else {
      value = jsonString;
    }
  } else if (main[0] === "number") {
    if (schema.enum !== undefined) unsupported(`numeric enum of "${name}"`);
    const { minimum, maximum } = schema;
    if (minimum === undefined && maximum === undefined) value = jsonNumber;
    else if (minimum === 0 && maximum === 1) value = unitInterval;
    else unsupported(`bounds [${String(minimum)}, ${String(maximum)}] of "${name}"`);
  } else {
    unsupported(`type "${String(main[0])}" of "${name}"`);
  }
  return nullable ? alt(value, lit("null")) : value;
}

/** The language of one JSON object with the schema's properties, in the schema's order. */
export function objectLanguage(schema: JsonSchemaNode): Lang {
  if (schema.type !== "object") unsupported("a root that is not an object");
  if (schema.additionalProperties !== false) unsupported("additionalProperties other than false");
  const properties = (schema.properties ?? {}) as Record<string, JsonSchemaNode>;
  const required = new Set((schema.required ?? []) as string[]);
  for (const name of required) if (!(name in properties)) unsupported(`required "${name}"`);
  const props = Object.entries(properties).map(([name, sub]) => ({
    required: required.has(name),
    lang: seq(lit(`${JSON.stringify(name)}: `), valueLanguage(name, sub)),
  }));
  // rest(i): properties i.. after at least one was written (each prefixed by the separator).
  const rest: Lang[] = [];
  rest[props.length] = seq();
  for (let i = props.length - 1; i >= 0; i--) {
    const p = props[i] as (typeof props)[number];
    const next = rest[i + 1] as Lang;
    const one = seq(lit(", "), p.lang);
    rest[i] = p.required ? seq(one, next) : seq(opt(one), next);
  }
  // first(i): properties i.. when none was written yet.
  let first: Lang = seq();
  for (let i = props.length - 1; i >= 0; i--) {
    const p = props[i] as (typeof props)[number];
    const withIt = seq(p.lang, rest[i + 1] as Lang);
    first = p.required ? withIt : alt(withIt, first);
  }
  return seq(opt(lit(" ")), lit("{"), first, lit("}"));
}

export interface OutputLanguage {
  lang: Lang;
  ebnf: string;
}

export function tradeProposalLanguage(): OutputLanguage {
  const lang = objectLanguage(TRADE_PROPOSAL_JSON_SCHEMA);
  return { lang, ebnf: toEbnf(lang) };
}
