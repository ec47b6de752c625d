/** The public API's happy paths, the same cases as test/edge, on the Worker in workerd. */
import { apiHappyCases } from "../support/cases/api.happy.ts";
import { onWorkers } from "./on-workers.ts";

onWorkers(apiHappyCases);
