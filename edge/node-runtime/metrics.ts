/** The edge's Prometheus metrics on Node (prom-client), one Registry per edge (no global). */
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { EdgeMetrics } from "../metrics.ts";

/** Seconds: from a cache hit on the edge to a long Hermes generation. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const DB_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function createPrometheusMetrics(options: { processMetrics?: boolean } = {}): EdgeMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: "sidecar_edge_requests_total",
    help: "Finished HTTP requests, by route pattern, method and status.",
    labelNames: ["route", "method", "status"],
    registers,
  });
  const duration = new Histogram({
    name: "sidecar_edge_request_duration_seconds",
    help: "Time from a request's arrival to its response's headers, by route pattern and method.",
    labelNames: ["route", "method"],
    buckets: REQUEST_BUCKETS,
    registers,
  });
  const db = new Histogram({
    name: "sidecar_edge_db_query_duration_seconds",
    help: "Database round trips, by query name and outcome.",
    labelNames: ["query", "outcome"],
    buckets: DB_BUCKETS,
    registers,
  });
  const examples = new Histogram({
    name: "sidecar_edge_augmentation_examples",
    help: "Worked examples prepended to one Phi-3 prompt by augmentation.",
    buckets: [0, 1, 2, 3, 4, 5, 8],
    registers,
  });
  const proposals = new Counter({
    name: "sidecar_edge_proposals_recorded_total",
    help: "Phi-3 proposals committed to the record, by endpoint.",
    labelNames: ["endpoint"],
    registers,
  });
  const feedback = new Counter({
    name: "sidecar_edge_feedback_recorded_total",
    help: "Feedback items committed to the record, by feedback_type.",
    labelNames: ["feedback_type"],
    registers,
  });
  return {
    request(route, method, status, seconds) {
      requests.inc({ route, method, status: String(status) });
      duration.observe({ route, method }, seconds);
    },
    dbQuery(query, seconds, ok) {
      db.observe({ query, outcome: ok ? "ok" : "error" }, seconds);
    },
    augmentationExamples(count) {
      examples.observe(count);
    },
    proposalRecorded(endpoint) {
      proposals.inc({ endpoint });
    },
    feedbackRecorded(feedbackType) {
      feedback.inc({ feedback_type: feedbackType });
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
