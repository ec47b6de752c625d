/** The public API's API keys and request ids, the same cases as test/edge, on the Worker in workerd. */
import { apiSecurityCases } from "../support/cases/api.security.ts";
import { onWorkers } from "./on-workers.ts";

onWorkers(apiSecurityCases);
