/** API keys and request ids on in-process Node (the database plays no part: PGlite). */
import { apiSecurityCases } from "../support/cases/api.security.ts";
import { NODE_TARGETS } from "../support/edge.ts";

for (const target of NODE_TARGETS.filter((t) => t.kind === "pglite")) apiSecurityCases(target);
