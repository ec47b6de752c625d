/**
 * The page's script is committed as edge/review/client-bundle.gen.ts (so Node and the Worker
 * serve it with no build step): it must be what `npm run build:review` makes of the sources now.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { buildReviewClient, GENERATED_PATH } from "../../edge/node-runtime/review-client-build.ts";

describe("the review page's bundled script", () => {
  it("is current (run `npm run build:review` after changing edge/review/client or the form model)", async () => {
    const committed = await readFile(GENERATED_PATH, "utf8");
    expect(committed === (await buildReviewClient())).toBe(true);
  });
});
