/** Database errors as they are logged: the failure named, never the values the query carried. */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeError } from "../../edge/errors.ts";
import { createTestDatabase, DB_KINDS, type TestDatabase } from "../support/db.ts";

describe.each(DB_KINDS)("describeError on a real database error (%s)", (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await db.destroy();
  });

  it("keeps the SQLSTATE and drops the parameters and quoted input", async () => {
    const secret = "my-secret-prompt-text";
    const err = await db.db.execute(sql`select ${secret}::uuid`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    // What drizzle throws carries the parameters (this is why it is never logged as is).
    expect(String((err as Error).message)).toContain(secret);
    const logged = describeError(err);
    expect(JSON.stringify(logged)).not.toContain(secret);
    expect(logged.code).toBe("22P02");
    expect(logged.message).toContain("invalid input syntax for type uuid");
  });
});
