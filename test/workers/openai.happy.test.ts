/** /v1 with the openai SDK, the same cases as test/edge, on the Worker in workerd. */
import { openAiHappyCases } from "../support/cases/openai.happy.ts";
import { onWorkers } from "./on-workers.ts";

onWorkers(openAiHappyCases);
