/** The public API's happy paths on in-process Node, on PGlite and on Postgres. */
import { apiHappyCases } from "../support/cases/api.happy.ts";
import { NODE_TARGETS } from "../support/edge.ts";

for (const target of NODE_TARGETS) apiHappyCases(target);
