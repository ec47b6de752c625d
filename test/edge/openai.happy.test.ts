/** /v1 with the openai SDK on in-process Node, on PGlite and on Postgres. */
import { openAiHappyCases } from "../support/cases/openai.happy.ts";
import { NODE_TARGETS } from "../support/edge.ts";

for (const target of NODE_TARGETS) openAiHappyCases(target);
