/** /v1 errors and malformed bodies on in-process Node, on PGlite and on Postgres. */
import { openAiErrorCases } from "../support/cases/openai.error.ts";
import { NODE_TARGETS } from "../support/edge.ts";

for (const target of NODE_TARGETS) openAiErrorCases(target);
