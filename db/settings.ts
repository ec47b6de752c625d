/**
 * The variables that name the database, shared by the edge's settings schema and the migrator.
 * zod only (the Worker parses the same schema).
 */
import { z } from "zod";

export const DatabaseEnv = z.object({
  /** PGlite's folder is DATA_DIR/pg when DATABASE_URL is unset. */
  DATA_DIR: z.string().min(1).default("./data"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
    .optional(),
});
export type DatabaseEnv = z.output<typeof DatabaseEnv>;
