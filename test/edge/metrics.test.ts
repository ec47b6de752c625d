/** The edge's /metrics (Node): moves with traffic, and sits behind the API key. */
import { afterEach, describe, expect, it } from "vitest";
import { createPrometheusMetrics } from "../../edge/node-runtime/metrics.ts";
import { createEdgeHarness, type EdgeHarness } from "../support/edge.ts";

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

let edge: EdgeHarness | undefined;
afterEach(async () => {
  await edge?.close();
  edge = undefined;
});

describe("edge metrics", () => {
  it("count requests, proposals, feedback, examples and database time", async () => {
    edge = await createEdgeHarness({ metrics: createPrometheusMetrics({ processMetrics: false }) });
    const scrape = async () => {
      const res = await edge?.request("/metrics");
      expect(res?.status).toBe(200);
      expect(res?.headers.get("content-type")).toContain("text/plain");
      return (await res?.text()) ?? "";
    };

    expect((await edge.post("/generate/", { prompt: "hello", max_length: 8 })).status).toBe(200);
    const proposal = await edge.post("/generate/phi3/", { prompt: "AAPL fell 3%", max_length: 64 });
    expect(proposal.status).toBe(200);
    const id = proposal.headers.get("x-transaction-id");
    const body = (await proposal.json()) as Record<string, unknown>;
    const fb = await edge.post("/feedback/phi3/", {
      transaction_id: id,
      feedback_type: "correction",
      feedback_content: { note: "tighter stop" },
      corrected_proposal: { ...body, confidence: 0.4 },
    });
    expect(fb.status).toBe(200);
    expect((await edge.request("/no/such/path")).status).toBe(404);

    const text = await scrape();
    expect(
      sample(text, "sidecar_edge_requests_total", 'route="/generate",method="POST",status="200"'),
    ).toBe(1);
    expect(
      sample(text, "sidecar_edge_requests_total", 'route="unmatched",method="GET",status="404"'),
    ).toBe(1);
    expect(text).not.toContain("/no/such/path");
    expect(
      sample(
        text,
        "sidecar_edge_request_duration_seconds_count",
        'route="/generate/phi3",method="POST"',
      ),
    ).toBe(1);
    expect(sample(text, "sidecar_edge_proposals_recorded_total", 'endpoint="generate_phi3"')).toBe(
      1,
    );
    expect(sample(text, "sidecar_edge_feedback_recorded_total", 'feedback_type="correction"')).toBe(
      1,
    );
    expect(
      sample(
        text,
        "sidecar_edge_db_query_duration_seconds_count",
        'query="insert_proposal",outcome="ok"',
      ),
    ).toBe(1);
    expect(text).toMatch(/^sidecar_edge_augmentation_examples_count 1$/m);
  });

  it("needs a key when API_KEYS is set", async () => {
    edge = await createEdgeHarness({
      env: { API_KEYS: "k1" },
      metrics: createPrometheusMetrics({ processMetrics: false }),
    });
    expect((await edge.request("/metrics")).status).toBe(401);
    const ok = await edge.request("/metrics", { headers: { authorization: "Bearer k1" } });
    expect(ok.status).toBe(200);
  });

  it("takes METRICS_TOKEN besides the API keys, for /metrics only", async () => {
    edge = await createEdgeHarness({
      env: { API_KEYS: "k1", METRICS_TOKEN: "prom" },
      metrics: createPrometheusMetrics({ processMetrics: false }),
    });
    const as = (key: string, path = "/metrics") =>
      edge?.request(path, { headers: { authorization: `Bearer ${key}` } });
    expect((await as("prom"))?.status).toBe(200);
    expect((await as("k1"))?.status).toBe(200);
    expect((await as("nope"))?.status).toBe(401);
    expect((await as("prom", "/feedback/phi3/export?kind=log"))?.status).toBe(401);
  });

  it("with METRICS_TOKEN alone, /metrics needs it and the API stays open on loopback", async () => {
    edge = await createEdgeHarness({
      env: { METRICS_TOKEN: "prom" },
      metrics: createPrometheusMetrics({ processMetrics: false }),
    });
    expect((await edge.request("/metrics")).status).toBe(401);
    const ok = await edge.request("/metrics", { headers: { authorization: "Bearer prom" } });
    expect(ok.status).toBe(200);
    expect((await edge.request("/health")).status).not.toBe(401);
  });

  it("is absent where the runtime keeps no metrics (the Worker's case)", async () => {
    edge = await createEdgeHarness({});
    expect((await edge.request("/metrics")).status).toBe(404);
  });
});
