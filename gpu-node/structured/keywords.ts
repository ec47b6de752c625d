/**
 * The JSON Schema subset schema.ts compiles: which keywords annotate, which constrain, why the
 * well-known others are refused, the size bounds, and the refusal itself.
 */
import { ServiceError } from "../contract/errors.ts";

/** Keywords that only annotate: ignored, they constrain nothing. */
export const ANNOTATIONS = new Set([
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
export const SUPPORTED = new Set([
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
export const REFUSED_WHY: Record<string, string> = {
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

export const SCHEMA_2020 = "https://json-schema.org/draft/2020-12/schema";

export function refuse(keyword: string, path: string, why: string): never {
  throw new ServiceError(
    "unsupported_schema",
    `json_schema: "${keyword}" at ${path} is not supported: ${why}.`,
    { keyword, path },
  );
}
