/**
 * Runs shared API cases against the Worker in workerd. It needs a Postgres (TEST_DATABASE_URL):
 * without one the suite is skipped locally, with the reason in its name; under CI=true
 * test/support/db.ts fails instead.
 */
import { describe, it } from "vitest";
import { TEST_DATABASE_URL } from "../support/db.ts";
import { type EdgeTarget, WORKERS_TARGET } from "../support/edge.ts";

export function onWorkers(cases: (target: EdgeTarget) => void): void {
  if (TEST_DATABASE_URL) {
    cases(WORKERS_TARGET);
    return;
  }
  describe.skip("the Worker suite needs TEST_DATABASE_URL (Postgres behind Hyperdrive)", () => {
    it("is skipped: set TEST_DATABASE_URL=postgres://postgres:pw@127.0.0.1:5432/test", () => {});
  });
}
