/**
 * Bounded numbers: for random bounds (fractions, negatives, exclusive, huge) and random texts in
 * the grammar's number format, our automaton accepts a text exactly when ajv accepts the value
 * it parses to. ajv is the judge, not our code.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteNfa } from "../../gpu-node/structured/byte-nfa.ts";
import { boundedNumber, exactDecimal } from "../../gpu-node/structured/numbers.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const ajv = new Ajv2020({ strict: false });

const BOUNDS = [
  0,
  1,
  -1,
  0.1,
  0.3,
  -0.3,
  0.5,
  -2.5,
  2.75,
  10,
  -10,
  99,
  100,
  1 / 3,
  -2 / 3,
  1e-7,
  123.456,
  1e14,
  5e14,
  999999999999999,
  -5e14,
  1e15,
  1e16,
  -1e20,
  0.999999999999999,
];

/** A text in the grammar's number format: optional -, 1 to 15 integer digits, optional fraction. */
const numberText = fc
  .tuple(
    fc.boolean(),
    fc.oneof(
      fc.constant("0"),
      fc.stringMatching(/^[1-9][0-9]{0,3}$/),
      fc.stringMatching(/^[1-9][0-9]{0,14}$/),
    ),
    fc.option(fc.oneof(fc.stringMatching(/^[0-9]{1,3}$/), fc.stringMatching(/^[0-9]{1,15}$/)), {
      nil: undefined,
    }),
  )
  .map(([neg, int, frac]) => `${neg ? "-" : ""}${int}${frac === undefined ? "" : `.${frac}`}`);

const boundValue = fc.oneof(
  fc.constantFrom(...BOUNDS),
  fc.integer({ min: -1000, max: 1000 }).map((n) => n / 8),
  fc.integer({ min: -1000, max: 1000 }).map((n) => n / 10),
);

describe("bounded numbers", () => {
  it("exactDecimal gives the double's exact value", () => {
    expect(exactDecimal(0.5)).toEqual({ n: 5n, scale: 1 });
    expect(exactDecimal(-3)).toEqual({ n: -3n, scale: 0 });
    const tenth = exactDecimal(0.1);
    expect(tenth.n.toString()).toBe("1000000000000000055511151231257827021181583404541015625");
    expect(tenth.scale).toBe(55);
  });

  it("accepts exactly what ajv accepts (random bounds x random texts)", () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            integer: fc.boolean(),
            minimum: boundValue,
            maximum: boundValue,
            exclusiveMinimum: boundValue,
            exclusiveMaximum: boundValue,
          },
          { requiredKeys: ["integer"] },
        ),
        fc.array(numberText, { minLength: 40, maxLength: 40 }),
        // Anything made of number characters: leading zeros, lone dots, double signs.
        fc.array(fc.stringMatching(/^[-0-9.]{1,6}$/), { minLength: 20, maxLength: 20 }),
        (bounds, texts, junk) => {
          const { integer, ...limits } = bounds;
          const lang = boundedNumber(bounds);
          const validate = ajv.compile({ type: integer ? "integer" : "number", ...limits });
          const nfa = lang && new ByteNfa(lang);
          // Also the texts on and next to each bound, where rounding matters.
          const near = Object.values(limits).flatMap((b) => [String(b), `${b}1`, `${b}0`, `${b}9`]);
          for (const text of [...texts, ...near, ...junk]) {
            const set = nfa?.advance(nfa.initial(), encode(text));
            const ours = set !== undefined && nfa?.isComplete(set) === true;
            const format = integer
              ? /^-?(0|[1-9]\d{0,14})$/.test(text)
              : /^-?(0|[1-9]\d{0,14})(\.\d{1,15})?$/.test(text);
            const theirs =
              format && validate(JSON.parse(text)) === true && !/^-0(\.0*)?$/.test(text);
            if (ours !== theirs) {
              throw new Error(
                `${text} with ${JSON.stringify(bounds)}: ours ${ours}, ajv ${theirs}`,
              );
            }
          }
        },
      ),
      { seed: 1313, numRuns: 400 },
    );
  });

  it("keeps confidence in [0, 1]: 1.000 yes, 1.0001 and -0 no", () => {
    const nfa = new ByteNfa(boundedNumber({ integer: false, minimum: 0, maximum: 1 }) as never);
    const ok = (t: string) => {
      const s = nfa.advance(nfa.initial(), encode(t));
      return s !== undefined && nfa.isComplete(s);
    };
    for (const t of ["0", "1", "0.5", "1.000", "0.999999999999999"]) expect(ok(t), t).toBe(true);
    for (const t of ["1.5", "1.0001", "-0", "-0.5", "01", "2"]) expect(ok(t), t).toBe(false);
  });

  it("is empty when no number fits", () => {
    expect(boundedNumber({ integer: true, minimum: 0.2, maximum: 0.8 })).toBeUndefined();
    expect(
      boundedNumber({ integer: false, exclusiveMinimum: 1, exclusiveMaximum: 1 }),
    ).toBeUndefined();
    expect(boundedNumber({ integer: false, minimum: 1e17 })).toBeUndefined();
  });
});
