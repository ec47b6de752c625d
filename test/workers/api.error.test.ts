/** The public API's errors and bad input, the same cases as test/edge, on the Worker in workerd. */
import { apiErrorCases } from "../support/cases/api.error.ts";
import { onWorkers } from "./on-workers.ts";

onWorkers(apiErrorCases);
