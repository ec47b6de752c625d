/** The watchdog's /metrics moves with its checks: readings, streak, restarts, alerts. */
import type { AddressInfo } from "node:net";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { ContainerRuntime, ContainerState } from "../../gpu-node/watchdog/docker.ts";
import { serveMetrics, WatchdogMetrics } from "../../gpu-node/watchdog/metrics.ts";
import { loadWatchdogSettings } from "../../gpu-node/watchdog/settings.ts";
import { Watchdog } from "../../gpu-node/watchdog/watchdog.ts";

/** A container engine in memory: nvidia-smi prints what `used` says; restart moves StartedAt. */
function memoryRuntime(used: { mib: number[] | "fail" }): ContainerRuntime {
  let state: ContainerState = {
    id: "c1",
    name: "llm-sidecar",
    running: true,
    status: "running",
    startedAt: new Date(0).toISOString(),
  };
  return {
    inspect: async () => ({ ok: true, value: state }),
    exec: async () =>
      used.mib === "fail"
        ? { ok: true, value: { exitCode: 9, stdout: "", stderr: "NVIDIA-SMI has failed" } }
        : {
            ok: true,
            value: {
              exitCode: 0,
              stdout: (used.mib as number[]).map((m, i) => `${i}, ${m}, 12288\n`).join(""),
              stderr: "",
            },
          },
    restart: async () => {
      state = { ...state, startedAt: new Date(Date.now() + 1000).toISOString() };
      return { ok: true, value: undefined };
    },
  };
}

function sample(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

describe("watchdog metrics", () => {
  it("follow readings, the streak, restarts and alerts", async () => {
    const settings = loadWatchdogSettings({
      WATCHDOG_CONSECUTIVE: "2",
      WATCHDOG_COOLDOWN_S: "0",
      WATCHDOG_MAX_RESTARTS_PER_HOUR: "1",
    });
    const used: { mib: number[] | "fail" } = { mib: [4000, 11000] };
    const metrics = new WatchdogMetrics(settings);
    const dog = new Watchdog({
      runtime: memoryRuntime(used),
      settings,
      logger: pino({ level: "silent" }),
      onReport: (r) => metrics.record(r),
    });
    const text = () => metrics.registry.metrics();

    expect(sample(await text(), "sidecar_watchdog_threshold_mib")).toBe(10500);
    expect(sample(await text(), "sidecar_watchdog_checks_total", '{result="ok"}')).toBe(0);

    await dog.check();
    let t = await text();
    expect(sample(t, "sidecar_watchdog_gpu_memory_used_mib", '{gpu="0"}')).toBe(4000);
    expect(sample(t, "sidecar_watchdog_gpu_memory_used_mib", '{gpu="1"}')).toBe(11000);
    expect(sample(t, "sidecar_watchdog_gpu_memory_total_mib", '{gpu="1"}')).toBe(12288);
    expect(sample(t, "sidecar_watchdog_streak")).toBe(1);

    await dog.check(); // second high reading: restart
    t = await text();
    expect(sample(t, "sidecar_watchdog_restarts_total", '{outcome="confirmed"}')).toBe(1);
    expect(sample(t, "sidecar_watchdog_checks_total", '{result="ok"}')).toBe(2);

    await dog.check();
    await dog.check(); // streak complete again, but the hourly cap (1) is reached: alert
    t = await text();
    expect(sample(t, "sidecar_watchdog_alerts_total")).toBe(1);
    expect(sample(t, "sidecar_watchdog_restarts_total", '{outcome="confirmed"}')).toBe(1);

    used.mib = "fail";
    await dog.check();
    t = await text();
    expect(sample(t, "sidecar_watchdog_checks_total", '{result="failed"}')).toBe(1);
  });

  it("are served as Prometheus text on GET /metrics, and nothing else", async () => {
    const metrics = new WatchdogMetrics({ thresholdMiB: 9000, consecutive: 3 });
    const server = await serveMetrics(metrics.registry, {
      host: "127.0.0.1",
      port: 0,
      logger: pino({ level: "silent" }),
    });
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/plain");
      expect(sample(await res.text(), "sidecar_watchdog_threshold_mib")).toBe(9000);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
