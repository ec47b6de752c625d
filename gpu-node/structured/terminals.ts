/**
 * The JSON terminals schema.ts builds values from: strings (any, or length-bounded without lone
 * surrogate escapes) and plain decimals and integers, as language.ts nodes.
 */
import { alt, bytes, JSON_STRING_CHAR, lit, loop, opt, rep, rule, seq } from "./language.ts";
import { MAX_FRACTION_DIGITS, MAX_INT_DIGITS } from "./numbers.ts";

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
export const STRING_CHARS = [JSON_STRING_CHAR, SAFE_ESCAPE];

/** The rest of a string once its minimum length is written: any characters, then `"`. */
export const STRING_TAIL = loop("json_string_tail", [JSON_STRING_CHAR, SAFE_ESCAPE], lit('"'));

/** A plain decimal: no exponent (so never Infinity), bounded digits. */
export const JSON_NUMBER = rule(
  "json_number",
  seq(
    opt(lit("-")),
    alt(lit("0"), seq(bytes([0x31, 0x39]), rep(digit, 0, MAX_INT_DIGITS - 1))),
    opt(seq(lit("."), rep(digit, 1, MAX_FRACTION_DIGITS))),
  ),
);

export const JSON_INTEGER = rule(
  "json_integer",
  seq(opt(lit("-")), alt(lit("0"), seq(bytes([0x31, 0x39]), rep(digit, 0, MAX_INT_DIGITS - 1)))),
);
