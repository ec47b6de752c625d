/**
 * The guarantee, property-based and seeded: random schemas of the subset x random prompts,
 * seeds, temperatures and budgets on BOTH tiny models. Every output must parse, satisfy its
 * schema by ajv (not by our code), and take at most max_tokens; the smallest budget each runtime
 * accepts (its 422's min_max_length) must produce a valid answer too.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../gpu-node/phi3/index.ts";
import type { HermesRuntime, Phi3Runtime } from "../../gpu-node/runtime.ts";
import { rootSchemaArbitrary } from "./arbitrary.ts";
import { json, loadTinyModels, minimumBudget, type TinyModels, validatorFor } from "./helpers.ts";

const SCHEMAS = 60;
const PER_SCHEMA_AND_MODEL = 9;
/** Schemas whose shortest answer is longer than this are left out (the tiny contexts are 1k). */
const MAX_MINIMUM = 160;
const WORDS = [
  "AAPL",
  "buy",
  "stop",
  "é",
  "📈",
  '"',
  "{",
  "}",
  "\\",
  "\n",
  "0.5",
  "null",
  "JSON",
  "the",
  "日本",
];

describe(`structured output: ${SCHEMAS} random schemas on both models`, () => {
  let models: TinyModels;
  beforeAll(async () => {
    models = await loadTinyModels(17);
  });
  afterAll(() => models?.dispose());

  it("every generation is valid by ajv and within max_tokens, including at the minimum budget", {
    timeout: 300_000,
  }, async () => {
    const schemas = fc.sample(rootSchemaArbitrary, { seed: 424242, numRuns: SCHEMAS * 2 });
    const random = mulberry32(13013);
    const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
    let used = 0;
    let generations = 0;
    const finish = { stop: 0, length: 0 };
    let atMinimum = 0;
    for (const schema of schemas) {
      if (used >= SCHEMAS) break;
      const validate = validatorFor(schema);
      const runtimes: [string, HermesRuntime | Phi3Runtime][] = [
        ["hermes", models.hermes],
        ["phi3", models.phi3],
      ];
      const minimums = await Promise.all(runtimes.map(([, r]) => minimumBudget(r, schema)));
      if (minimums.some((m) => m > MAX_MINIMUM)) continue;
      used++;
      for (const [i, [name, runtime]] of runtimes.entries()) {
        const min = minimums[i] as number;
        for (let g = 0; g < PER_SCHEMA_AND_MODEL; g++) {
          const kind = random();
          const maxTokens =
            g === 0
              ? min
              : kind < 0.4
                ? int(min, min + 5)
                : kind < 0.9
                  ? int(min + 6, min + 60)
                  : int(min + 100, min + 250);
          const prompt = Array.from(
            { length: int(1, 12) },
            () => WORDS[int(0, WORDS.length - 1)],
          ).join(" ");
          const sampling = {
            temperature: random() < 0.25 ? 0 : Math.round(random() * 150) / 100,
            top_p: random() < 0.5 ? 1 : 0.5 + random() / 2,
            seed: int(0, 2 ** 32 - 1),
          };
          const context = JSON.stringify({ name, schema, maxTokens, prompt, sampling });
          const result = await json(runtime, { prompt, schema, maxTokens, sampling });
          expect(JSON.parse(result.raw), context).toEqual(result.json);
          if (!validate(result.json)) expect.fail(`invalid ${result.raw} for ${context}`);
          expect(result.usage.completion_tokens, context).toBeLessThanOrEqual(maxTokens);
          finish[result.finishReason]++;
          if (maxTokens === min) atMinimum++;
          generations++;
        }
      }
    }
    expect(used).toBe(SCHEMAS);
    expect(generations).toBeGreaterThanOrEqual(1000);
    console.info(
      `${generations} generations over ${used} schemas; finish ${JSON.stringify(finish)}; ${atMinimum} at the minimum budget`,
    );
  });
});
