/**
 * The Grafana dashboard and Prometheus config of the `monitoring` profile: every panel's query
 * names a metric that the services really export (read from their own registries), and every
 * scrape target is a compose service on its port.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createPrometheusMetrics } from "../../edge/node-runtime/metrics.ts";
import { GpuNodeMetrics } from "../../gpu-node/metrics.ts";
import { WatchdogMetrics } from "../../gpu-node/watchdog/metrics.ts";

interface Panel {
  title: string;
  targets: { expr: string }[];
  datasource: { uid: string };
}

const dashboard = JSON.parse(
  readFileSync("docker/monitoring/grafana/dashboards/sidecar.json", "utf8"),
) as { uid: string; panels: Panel[] };

/** Metric families a registry's exposition declares (# TYPE lines). */
function families(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1] as string, m[2] as string);
  return out;
}

async function exported(): Promise<Map<string, string>> {
  const edge = await createPrometheusMetrics({ processMetrics: false }).render();
  const gpu = new GpuNodeMetrics(
    {
      queue: () => ({ running: 0, waiting: 0 }),
      state: () => "ready",
      vram: async () => ({ usedMiB: 1, totalMiB: 2 }),
    },
    { processMetrics: false },
  );
  const watchdog = new WatchdogMetrics({ thresholdMiB: 10_500, consecutive: 3 });
  return new Map([
    ...families(edge.body),
    ...families(await gpu.registry.metrics()),
    ...families(await watchdog.registry.metrics()),
  ]);
}

describe("monitoring", () => {
  it("every panel's query names an exported metric, histograms through their buckets", async () => {
    const known = await exported();
    const missing: string[] = [];
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      expect(panel.datasource.uid).toBe("prometheus");
      for (const { expr } of panel.targets) {
        const names = [...expr.matchAll(/\b(sidecar_[a-z0-9_]+)/g)].map((m) => m[1] as string);
        expect(names.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
        for (const name of names) {
          const base = name.replace(/_(bucket|count|sum)$/, "");
          const type = known.get(name) ?? known.get(base);
          if (!type) missing.push(`${panel.title}: ${name}`);
          else if (name !== base) expect(type, name).toBe("histogram");
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it("shows tokens/s, time to first token, queue depth, error rate and VRAM with the threshold", () => {
    const all = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join("\n");
    for (const needle of [
      "rate(sidecar_gpu_generated_tokens_total",
      "sidecar_gpu_time_to_first_token_seconds_bucket",
      "sidecar_gpu_queue_waiting",
      'status=~"5.."',
      "sidecar_watchdog_gpu_memory_used_mib",
      "sidecar_watchdog_threshold_mib",
    ]) {
      expect(all).toContain(needle);
    }
  });

  it("Prometheus scrapes the edge, the GPU node and the watchdog where compose runs them", () => {
    const prom = parse(readFileSync("docker/monitoring/prometheus.yml", "utf8")) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = Object.fromEntries(
      prom.scrape_configs.map((s) => [s.job_name, s.static_configs.flatMap((c) => c.targets)]),
    );
    expect(targets).toEqual({
      edge: ["edge:8000"],
      "gpu-node": ["llm-sidecar:8001"],
      watchdog: ["vram-watchdog:9102"],
    });
    const compose = parse(readFileSync("docker/compose.yaml", "utf8")) as {
      services: Record<string, unknown>;
    };
    for (const service of ["edge", "llm-sidecar", "vram-watchdog"]) {
      expect(Object.keys(compose.services)).toContain(service);
    }
  });
});
