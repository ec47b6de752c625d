/**
 * What the edge measures, behind a small interface (Workers-safe: no prom-client here).
 *
 * The Node entry injects a Prometheus implementation (edge/node-runtime/metrics.ts) and serves it on
 * GET /metrics; the Worker has none (Cloudflare's own analytics cover it), so /metrics is a 404
 * there.
 */
export interface EdgeMetrics {
  /** One finished request: the route pattern (never the raw path), method, status, seconds. */
  request(route: string, method: string, status: number, seconds: number): void;
  /** One database round trip of a named query, seconds; ok false when it failed. */
  dbQuery(query: string, seconds: number, ok: boolean): void;
  /** How many worked examples augmentation prepended to one Phi-3 prompt. */
  augmentationExamples(count: number): void;
  proposalRecorded(endpoint: string): void;
  feedbackRecorded(feedbackType: string): void;
  /** The Prometheus text exposition. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Times `run` as the named query. */
export async function timedQuery<T>(
  metrics: EdgeMetrics | undefined,
  query: string,
  run: () => Promise<T>,
): Promise<T> {
  if (!metrics) return run();
  const started = performance.now();
  try {
    const value = await run();
    metrics.dbQuery(query, (performance.now() - started) / 1000, true);
    return value;
  } catch (error) {
    metrics.dbQuery(query, (performance.now() - started) / 1000, false);
    throw error;
  }
}
