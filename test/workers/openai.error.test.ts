/** /v1 errors and malformed bodies, the same cases as test/edge, on the Worker in workerd. */
import { openAiErrorCases } from "../support/cases/openai.error.ts";
import { onWorkers } from "./on-workers.ts";

onWorkers(openAiErrorCases);
