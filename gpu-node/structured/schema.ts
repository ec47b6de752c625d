/**
 * JSON Schema (a documented subset) -> the output language (language.ts's AST), from which come
 * the EBNF xgrammar masks with and the byte automaton the budget planner walks.
 *
 * Fail closed: a keyword outside the subset is refused with a ServiceError("unsupported_schema")
 * naming it and where it is, never dropped; a schema that is not valid JSON Schema (2020-12, by
 * ajv's meta-schema) is refused with "invalid_schema". Every string the language admits parses
 * to a value the schema accepts (the tests check that with ajv, not with this code); the language
 * is a subset of the schema's values: one layout (one line, keys in the schema's order, `", "` and
 * `": "` separators, one optional leading space), numbers without exponent and with at most 15
 * integer and 15 fraction digits, no lone-surrogate escapes in length-bounded strings.
 *
 * `$ref` is local (`#/$defs/Name` or `#/definitions/Name`) and never recursive: the planner
 * needs a regular language (a finite automaton with exact shortest completions), so a recursive
 * schema is refused rather than cut at an arbitrary depth.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { ServiceError } from "../contract/errors.ts";
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
  step,
} from "./language.ts";
import { boundedNumber, choice, MAX_FRACTION_DIGITS, MAX_INT_DIGITS } from "./numbers.ts";

export type JsonSchema = Readonly<Record<string, unknown>>;

/** Keywords that only annotate: ignored, they constrain nothing. */
const ANNOTATIONS = new Set([
  "description",
  "title",
  "$comment",
  "examples",
  "default",
  "deprecated",
  "readOnly",
  "writeOnly",
]);

/** The subset. Anything else is refused by name. */
const SUPPORTED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "enum",
  "const",
  "anyOf",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "$ref",
  "$defs",
  "definitions",
]);

/** Why some well-known keywords are refused (the message says it). */
const REFUSED_WHY: Record<string, string> = {
  not: "the grammar cannot express a complement",
  pattern: "regular expressions are not translated into the grammar",
  patternProperties: "regular expressions are not translated into the grammar",
  format: "formats are not enforced by the grammar",
  uniqueItems: "uniqueness is not enforced by the grammar",
  allOf: "intersections are not supported; merge the schemas",
  oneOf: "exactly-one is not enforced; use anyOf",
  multipleOf: "divisibility is not enforced by the grammar",
  additionalProperties: "only additionalProperties: false (or absent, meaning false) is supported",
  $id: "schema identifiers would change how $ref resolves",
};

/** Largest minLength/maxLength/minItems/maxItems bound the grammar unrolls. */
export const MAX_LENGTH_BOUND = 1024;
/** Largest byte automaton a schema may compile to (states); bigger schemas are refused. */
export const MAX_NFA_STATES = 400_000;

const SCHEMA_2020 = "https://json-schema.org/draft/2020-12/schema";

function refuse(keyword: string, path: string, why: string): never {
  throw new ServiceError(
    "unsupported_schema",
    `json_schema: "${keyword}" at ${path} is not supported: ${why}.`,
    { keyword, path },
  );
}

const digit = bytes([0x30, 0x39]);
const hex = bytes([0x30, 0x39], [0x41, 0x46], [0x61, 0x66]);
const simpleEscape = bytes(
  [0x22, 0x22],
  [0x2f, 0x2f],
  [0x5c, 0x5c],
  [0x62, 0x62],
  [0x66, 0x66],
  [0x6e, 0x6e],
  [0x72, 0x72],
  [0x74, 0x74],
);

/** Any JSON string: written as `"\"" json_string_sub` with a right-recursive tail (see `loop`),
 * the same language as `"\"" (char | "\\" escape)* "\""`, which xgrammar masks hundreds of
 * times slower (bench/constrained.ts). */
export const JSON_STRING = rule(
  "json_string",
  seq(
    lit('"'),
    loop(
      "json_string_sub",
      [JSON_STRING_CHAR, seq(lit("\\"), alt(simpleEscape, seq(lit("u"), rep(hex, 4, 4))))],
      lit('"'),
    ),
  ),
);

/** One code point after a backslash, never a UTF-16 surrogate half (`\uD800`-`\uDFFF`), so that
 * each escape counts as one character, as ajv counts minLength/maxLength. */
const SAFE_ESCAPE = seq(
  lit("\\"),
  alt(
    simpleEscape,
    seq(
      lit("u"),
      alt(
        seq(
          bytes([0x30, 0x39], [0x41, 0x43], [0x45, 0x46], [0x61, 0x63], [0x65, 0x66]),
          rep(hex, 3, 3),
        ),
        seq(bytes([0x44, 0x44], [0x64, 0x64]), bytes([0x30, 0x37]), rep(hex, 2, 2)),
      ),
    ),
  ),
);

/** One character of a length-bounded string: unescaped, or an escape. */
const STRING_CHARS = [JSON_STRING_CHAR, SAFE_ESCAPE];

/** The rest of a string once its minimum length is written: any characters, then `"`. */
const STRING_TAIL = loop("json_string_tail", [JSON_STRING_CHAR, SAFE_ESCAPE], lit('"'));

/** A plain decimal: no exponent (so never Infinity), bounded digits. */
export const JSON_NUMBER = rule(
  "json_number",
  seq(
    opt(lit("-")),
    alt(lit("0"), seq(bytes([0x31, 0x39]), rep(digit, 0, MAX_INT_DIGITS - 1))),
    opt(seq(lit("."), rep(digit, 1, MAX_FRACTION_DIGITS))),
  ),
);

const JSON_INTEGER = rule(
  "json_integer",
  seq(opt(lit("-")), alt(lit("0"), seq(bytes([0x31, 0x39]), rep(digit, 0, MAX_INT_DIGITS - 1)))),
);

/** The one-line layout the grammar writes, for enum and const values. */
export function layout(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(layout).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${layout(v)}`).join(", ")}}`;
  }
  return JSON.stringify(value);
}

/** Number of NFA states the Thompson construction makes for a node (shared nodes per use). */
function stateEstimate(root: Lang): number {
  const memo = new Map<Lang, number>();
  const count = (node: Lang): number => {
    const known = memo.get(node);
    if (known !== undefined) return known;
    let n: number;
    switch (node.kind) {
      case "lit":
        n = new TextEncoder().encode(node.text).length;
        break;
      case "bytes":
        n = 0;
        break;
      case "char":
        n = count(node.bytes);
        break;
      case "rule":
        n = count(node.body);
        break;
      case "loop":
        n = 1 + node.items.reduce((sum, item) => sum + 1 + count(item), 0) + count(node.end);
        break;
      case "step":
        n =
          1 +
          node.items.reduce((sum, item) => sum + count(item), 0) +
          count(node.next) +
          (node.end ? count(node.end) : 0);
        break;
      case "seq":
      case "alt":
        n = node.items.reduce((sum, item) => sum + 1 + count(item), 0);
        break;
      case "rep":
        n = (node.max === Infinity ? node.min + 2 : node.max) * (1 + count(node.item)) + 2;
        break;
    }
    memo.set(node, n);
    return n;
  };
  return count(root);
}

export interface SchemaLanguage {
  /** The whole output: one optional leading space, then the value. */
  lang: Lang;
}

/**
 * Compiles a schema of the subset into its language. Throws ServiceError("invalid_schema") for
 * a schema that is not JSON Schema and ServiceError("unsupported_schema") for one outside the
 * subset (or admitting no value the grammar can write).
 */
export function schemaLanguage(
  schema: unknown,
  ajv: Ajv2020 = new Ajv2020({ strict: false }),
): SchemaLanguage {
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    throw new ServiceError("invalid_schema", "json_schema must be a JSON object.", {});
  }
  const root = schema as JsonSchema;
  if (
    root.$schema !== undefined &&
    root.$schema !== SCHEMA_2020 &&
    root.$schema !== `${SCHEMA_2020}#`
  ) {
    refuse("$schema", "#", `only ${SCHEMA_2020} is supported`);
  }
  if (!ajv.validateSchema(root)) {
    const errors = (ajv.errors ?? []).slice(0, 5).map((e) => ({
      path: e.instancePath || "/",
      message: e.message ?? "invalid",
    }));
    throw new ServiceError(
      "invalid_schema",
      `json_schema is not a valid JSON Schema: ${errors.map((e) => `${e.path} ${e.message}`).join("; ")}.`,
      { errors },
    );
  }

  let counter = 0;
  const defs = new Map<string, Lang | undefined>();
  const expanding = new Set<string>();

  const resolve = (ref: unknown, path: string): Lang | undefined => {
    const match = typeof ref === "string" ? /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref) : null;
    if (!match)
      refuse(
        "$ref",
        path,
        "only local references #/$defs/Name and #/definitions/Name are supported",
      );
    const [, where, encoded] = match as unknown as [string, string, string];
    let name: string;
    try {
      name = decodeURIComponent(encoded).replaceAll("~1", "/").replaceAll("~0", "~");
    } catch {
      throw new ServiceError(
        "invalid_schema",
        `json_schema: $ref ${String(ref)} at ${path} is not a valid URI fragment.`,
        { path },
      );
    }
    const key = `${where}/${name}`;
    if (defs.has(key)) return defs.get(key);
    if (expanding.has(key)) {
      refuse(
        "$ref",
        path,
        `${String(ref)} is recursive; recursive schemas are refused (the grammar must be finite)`,
      );
    }
    const table = root[where] as Record<string, unknown> | undefined;
    if (!table || !Object.hasOwn(table, name)) {
      throw new ServiceError(
        "invalid_schema",
        `json_schema: $ref ${String(ref)} at ${path} does not resolve.`,
        {
          path,
        },
      );
    }
    expanding.add(key);
    const body = value(table[name], `#/${where}/${encoded}`);
    expanding.delete(key);
    const compiled = body && rule(`def_${counter++}`, body);
    defs.set(key, compiled);
    return compiled;
  };

  /** Whether `candidate` satisfies `node` without its enum/const (ajv, with the root's defs). */
  const satisfies = (node: JsonSchema, candidate: unknown): boolean => {
    const { enum: _e, const: _c, ...rest } = node;
    const check: Record<string, unknown> = { ...rest };
    if (root.$defs !== undefined) check.$defs = root.$defs;
    if (root.definitions !== undefined) check.definitions = root.definitions;
    let validate: ReturnType<typeof ajv.compile>;
    try {
      validate = ajv.compile(check);
    } catch (error) {
      throw new ServiceError(
        "invalid_schema",
        `json_schema: the schema beside an enum/const is not usable: ${error instanceof Error ? error.message : String(error)}.`,
        {},
        { cause: error },
      );
    }
    try {
      return validate(candidate) === true;
    } finally {
      ajv.removeSchema(check);
    }
  };

  const value = (node: unknown, path: string): Lang | undefined => {
    if (node === false) return undefined;
    if (node === true)
      refuse("true", path, "a schema that allows any value cannot be written; give it a type");
    const s = node as JsonSchema;
    for (const key of Object.keys(s)) {
      if (ANNOTATIONS.has(key) || (key === "$schema" && path === "#")) continue;
      if (!SUPPORTED.has(key))
        refuse(key, path, REFUSED_WHY[key] ?? "the keyword is outside the supported subset");
    }
    if (s.additionalProperties !== undefined && s.additionalProperties !== false) {
      refuse("additionalProperties", path, REFUSED_WHY.additionalProperties as string);
    }
    const constraining = Object.keys(s).filter(
      (k) => !ANNOTATIONS.has(k) && k !== "$defs" && k !== "definitions" && k !== "$schema",
    );
    if (s.$ref !== undefined) {
      const other = constraining.find((k) => k !== "$ref");
      if (other)
        refuse(
          other,
          path,
          "keywords beside $ref are not supported; move them into the definition",
        );
      return resolve(s.$ref, path);
    }
    if (s.anyOf !== undefined) {
      const other = constraining.find((k) => k !== "anyOf");
      if (other)
        refuse(other, path, "keywords beside anyOf are not supported; move them into each branch");
      return choice(
        ...(s.anyOf as unknown[]).map((branch, i) => value(branch, `${path}/anyOf/${i}`)),
      );
    }
    if (s.enum !== undefined || s.const !== undefined) {
      let values: unknown[] = s.const !== undefined ? [s.const] : [...(s.enum as unknown[])];
      if (s.const !== undefined && s.enum !== undefined) {
        values = values.filter((v) => (s.enum as unknown[]).some((e) => layout(e) === layout(v)));
      }
      // Other keywords beside enum/const narrow it: keep the values that satisfy them (ajv
      // checks them, so even keywords outside the subset hold here).
      if (constraining.some((k) => k !== "enum" && k !== "const")) {
        values = values.filter((v) => satisfies(s, v));
      }
      const texts = [...new Set(values.map(layout))];
      return choice(...texts.map((t) => lit(t)));
    }
    if (s.type === undefined) {
      refuse(
        "type",
        path,
        "a schema without type, enum, const, anyOf or $ref allows any value; give it a type",
      );
    }
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    return choice(...types.map((t) => typed(t, s, path)));
  };

  const typed = (type: string, s: JsonSchema, path: string): Lang | undefined => {
    switch (type) {
      case "null":
        return lit("null");
      case "boolean":
        return alt(lit("true"), lit("false"));
      case "string":
        return string(s, path);
      case "number":
      case "integer": {
        const bounds = {
          integer: type === "integer",
          minimum: s.minimum as number | undefined,
          maximum: s.maximum as number | undefined,
          exclusiveMinimum: s.exclusiveMinimum as number | undefined,
          exclusiveMaximum: s.exclusiveMaximum as number | undefined,
        };
        const bounded = [
          bounds.minimum,
          bounds.maximum,
          bounds.exclusiveMinimum,
          bounds.exclusiveMaximum,
        ];
        if (bounded.every((b) => b === undefined))
          return type === "integer" ? JSON_INTEGER : JSON_NUMBER;
        const lang = boundedNumber(bounds);
        return lang && rule(`${type}_${counter++}`, lang);
      }
      case "object":
        return object(s, path);
      case "array":
        return array(s, path);
      default:
        refuse("type", path, `unknown type ${JSON.stringify(type)}`);
    }
  };

  const lengthBound = (s: JsonSchema, key: string, path: string): number | undefined => {
    const n = s[key] as number | undefined;
    if (n !== undefined && n > MAX_LENGTH_BOUND) {
      refuse(key, path, `bounds above ${MAX_LENGTH_BOUND} are not supported`);
    }
    return n;
  };

  const string = (s: JsonSchema, path: string): Lang | undefined => {
    const min = lengthBound(s, "minLength", path) ?? 0;
    const max = lengthBound(s, "maxLength", path) ?? Infinity;
    if (min > max) return undefined;
    if (min === 0 && max === Infinity) return JSON_STRING;
    // s_i: the rest of the string after i characters; right-recursive rules, which xgrammar
    // masks fast, unrolled up to the bound (a finite language for the planner).
    const id = counter++;
    let next: Lang = max === Infinity ? STRING_TAIL : lit('"');
    for (let i = (max === Infinity ? min : max) - 1; i >= 0; i--) {
      // `str_i ::= "\"" | char str_i+1 | "\\" escape str_i+1`: the shape of json_string_sub,
      // which xgrammar masks fast (a separate character rule cost it tens of ms per mask).
      next = step(`str_${id}_${i}`, STRING_CHARS, next, i >= min ? lit('"') : undefined);
    }
    return seq(lit('"'), next);
  };

  const object = (s: JsonSchema, path: string): Lang | undefined => {
    const properties = (s.properties ?? {}) as Record<string, unknown>;
    const required = new Set((s.required ?? []) as string[]);
    for (const name of required) if (!Object.hasOwn(properties, name)) return undefined;
    const props: { required: boolean; lang: Lang }[] = [];
    for (const [name, sub] of Object.entries(properties)) {
      const v = value(sub, `${path}/properties/${encodePointer(name)}`);
      if (v === undefined) {
        if (required.has(name)) return undefined;
        continue; // an optional key no value fits: never written
      }
      props.push({ required: required.has(name), lang: seq(lit(`${JSON.stringify(name)}: `), v) });
    }
    const id = counter++;
    const named = props.some((p) => !p.required);
    // rest(i): properties i.. after at least one was written (each prefixed by the separator).
    const rest: Lang[] = [];
    rest[props.length] = seq();
    for (let i = props.length - 1; i >= 0; i--) {
      const p = props[i] as (typeof props)[number];
      const one = seq(lit(", "), p.lang);
      const body = p.required ? seq(one, rest[i + 1] as Lang) : seq(opt(one), rest[i + 1] as Lang);
      rest[i] = named ? rule(`obj_${id}_${i}`, body) : body;
    }
    // first(i): properties i.. when none was written yet.
    let first: Lang = seq();
    for (let i = props.length - 1; i >= 0; i--) {
      const p = props[i] as (typeof props)[number];
      const withIt = seq(p.lang, rest[i + 1] as Lang);
      first = p.required ? withIt : alt(withIt, first);
    }
    return seq(lit("{"), first, lit("}"));
  };

  const array = (s: JsonSchema, path: string): Lang | undefined => {
    const min = lengthBound(s, "minItems", path) ?? 0;
    const max = lengthBound(s, "maxItems", path) ?? Infinity;
    if (min > max) return undefined;
    if (s.items === undefined && max > 0) {
      refuse("items", path, "an array without items allows any values; give items a schema");
    }
    const item = max > 0 ? value(s.items, `${path}/items`) : undefined;
    if (item === undefined) return min === 0 ? lit("[]") : undefined;
    const more = seq(lit(", "), item);
    if (max === Infinity) {
      const tail = loop(`arr_${counter++}`, [more], lit("]"));
      const head = seq(lit("["), item, rep(more, Math.max(min - 1, 0), Math.max(min - 1, 0)), tail);
      return min === 0 ? alt(lit("[]"), head) : head;
    }
    const list = seq(item, rep(more, Math.max(min - 1, 0), max - 1));
    return seq(lit("["), min === 0 ? opt(list) : list, lit("]"));
  };

  const body = value(root, "#");
  if (body === undefined) {
    refuse(
      "json_schema",
      "#",
      `it admits no value the grammar can write (numbers have at most ${MAX_INT_DIGITS} integer digits; contradictory bounds or required keys leave nothing)`,
    );
  }
  const lang = seq(opt(lit(" ")), body);
  const states = stateEstimate(lang);
  if (states > MAX_NFA_STATES) {
    refuse(
      "json_schema",
      "#",
      `it is too large for the grammar (about ${states} automaton states, at most ${MAX_NFA_STATES})`,
    );
  }
  return { lang };
}

function encodePointer(name: string): string {
  return name.replaceAll("~", "~0").replaceAll("/", "~1");
}
