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
  ANNOTATIONS,
  MAX_LENGTH_BOUND,
  MAX_NFA_STATES,
  REFUSED_WHY,
  refuse,
  SCHEMA_2020,
  SUPPORTED,
} from "./keywords.ts";
import { alt, type Lang, lit, loop, opt, rep, rule, seq, step } from "./language.ts";
import { boundedNumber, choice, MAX_INT_DIGITS } from "./numbers.ts";
import { stateEstimate } from "./state-estimate.ts";
import { JSON_INTEGER, JSON_NUMBER, JSON_STRING, STRING_CHARS, STRING_TAIL } from "./terminals.ts";

export type JsonSchema = Readonly<Record<string, unknown>>;

/** The one-line layout the grammar writes, for enum and const values. */
export function layout(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(layout).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${layout(v)}`).join(", ")}}`;
  }
  return JSON.stringify(value);
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
