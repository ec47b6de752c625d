import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import type { DatabaseHandle } from "./database.ts";
import * as schema from "./schema/index.ts";

/** Embedded Postgres (PGlite). `dataDir` undefined = in memory. Node only. */
export async function createPgliteDatabase(dataDir?: string): Promise<DatabaseHandle> {
  const client = await PGlite.create(dataDir);
  const db = drizzle(client, { schema });
  return {
    db,
    kind: "pglite",
    close: () => client.close(),
  };
}
