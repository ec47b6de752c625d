/** The public API's errors and bad input on in-process Node, on PGlite and on Postgres. */
import { apiErrorCases } from "../support/cases/api.error.ts";
import { NODE_TARGETS } from "../support/edge.ts";

for (const target of NODE_TARGETS) apiErrorCases(target);
