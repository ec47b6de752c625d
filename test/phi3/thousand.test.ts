/**
 * The key property: every constrained generation is a valid trade proposal, checked by an
 * independent validator (ajv on the contract's JSON Schema), whatever the prompt, seed,
 * temperature and budget; including budgets at the minimum, where the object must close at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPhi3, mulberry32, type Phi3OnnxRuntime } from "../../gpu-node/phi3/index.ts";
import { makeTinyFolder, type TinyFolder, tradeSchemaValidator } from "./helpers.ts";

const GENERATIONS = 1000;
const WORDS = [
  "AAPL",
  "MSFT",
  "stop",
  "target",
  "risk",
  "gap",
  "earnings",
  "the",
  "LONG",
  "SHORT",
  "é",
  "📈",
  '"',
  "{",
  "}",
  "\\",
  "\n",
  "0.5",
  "ticker",
];

describe(`${GENERATIONS} constrained generations`, () => {
  let folder: TinyFolder;
  let runtime: Phi3OnnxRuntime;
  beforeAll(async () => {
    folder = await makeTinyFolder(2024);
    runtime = await loadPhi3({ modelDir: folder.dir, device: "cpu", threads: 1 }, {});
  });
  afterAll(async () => {
    await runtime?.dispose();
    await folder?.remove();
  });

  it("all parse and validate against the trade schema (ajv), within max_length", {
    timeout: 240_000,
  }, async () => {
    const validate = tradeSchemaValidator();
    const random = mulberry32(20240611);
    const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
    const min = runtime.minMaxLength;
    const signal = new AbortController().signal;
    const finish = { stop: 0, length: 0 };
    const budgets = { small: 0, medium: 0, large: 0 };
    for (let i = 0; i < GENERATIONS; i++) {
      const kind = random();
      const maxTokens =
        kind < 0.35 ? int(min, min + 6) : kind < 0.9 ? int(min + 7, 120) : int(150, 400);
      budgets[maxTokens <= min + 6 ? "small" : maxTokens <= 120 ? "medium" : "large"]++;
      const prompt = Array.from({ length: int(1, 30) }, () => WORDS[int(0, WORDS.length - 1)]).join(
        " ",
      );
      const temperature = random() < 0.25 ? 0 : Math.round(random() * 150) / 100;
      const sampling = {
        temperature,
        top_p: random() < 0.5 ? 1 : 0.5 + random() / 2,
        top_k: random() < 0.5 ? 0 : int(1, 100),
        seed: int(0, 2 ** 32 - 1),
      };
      const context = { i, prompt, maxTokens, sampling };
      const result = await runtime.generate({ prompt, maxTokens, sampling }, { signal });
      let parsed: unknown;
      expect(() => {
        parsed = JSON.parse(result.raw);
      }, JSON.stringify(context)).not.toThrow();
      if (!validate(parsed))
        expect.fail(`invalid proposal ${result.raw} for ${JSON.stringify(context)}`);
      expect(result.usage.completion_tokens, JSON.stringify(context)).toBeLessThanOrEqual(
        maxTokens,
      );
      finish[result.finishReason]++;
    }
    // The mix really covered what it claims (budgets at the minimum and large ones).
    expect(budgets.small).toBeGreaterThan(250);
    expect(budgets.large).toBeGreaterThan(50);
    console.info(
      `finish reasons over ${GENERATIONS}: ${JSON.stringify(finish)}; budgets ${JSON.stringify(budgets)}`,
    );
  });
});
