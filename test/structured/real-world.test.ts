/**
 * Schemas a client would actually send, on both tiny models: an order ticket, a calendar event,
 * reasoning steps with a final answer, a nested portfolio. Valid by ajv, within max_tokens, at
 * the minimum budget and above it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, loadTinyModels, minimumBudget, type TinyModels, validatorFor } from "./helpers.ts";

import { CALENDAR_EVENT, ORDER_TICKET, PORTFOLIO, REASONING } from "./schemas.ts";

const SCHEMAS = { ORDER_TICKET, CALENDAR_EVENT, REASONING, PORTFOLIO };

describe("real-world schemas on both tiny models", () => {
  let models: TinyModels;
  beforeAll(async () => {
    models = await loadTinyModels(23);
  });
  afterAll(() => models?.dispose());

  for (const [name, schema] of Object.entries(SCHEMAS)) {
    for (const model of ["hermes", "phi3"] as const) {
      it(`${name} on ${model}`, { timeout: 120_000 }, async () => {
        const runtime = models[model];
        const validate = validatorFor(schema);
        const min = await minimumBudget(runtime, schema);
        for (const [i, maxTokens] of [min, min + 3, min + 20, min + 60, 300, 300].entries()) {
          const sampling = { temperature: i % 3 === 0 ? 0 : 0.9, top_p: 0.95, seed: 100 + i };
          const result = await json(runtime, {
            prompt: `Fill in the ${name.toLowerCase()} for AAPL, 10 shares.`,
            schema,
            maxTokens,
            sampling,
          });
          if (!validate(result.json))
            expect.fail(`invalid ${result.raw} (max_tokens ${maxTokens})`);
          expect(result.usage.completion_tokens).toBeLessThanOrEqual(maxTokens);
        }
      });
    }
  }
});
