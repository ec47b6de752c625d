import { describe, expect, it } from "vitest";
import { loadWatchdogSettings, parseDockerHost } from "../../gpu-node/watchdog/settings.ts";

describe("watchdog settings", () => {
  it("defaults to the seed's watchdog", () => {
    expect(loadWatchdogSettings({})).toEqual({
      container: "llm-sidecar",
      intervalS: 60,
      thresholdMiB: 10_500,
      consecutive: 3,
      cooldownS: 300,
      maxRestartsPerHour: 3,
      execTimeoutS: 20,
      stopTimeoutS: 30,
      docker: { kind: "socket", socketPath: "/var/run/docker.sock" },
      metrics: { host: "127.0.0.1", port: 9102 },
      logLevel: "info",
    });
  });

  it("reads every variable, and treats empty strings as unset", () => {
    const s = loadWatchdogSettings({
      WATCHDOG_CONTAINER: "gpu",
      WATCHDOG_INTERVAL_S: "0.2",
      WATCHDOG_THRESHOLD_MIB: "20000",
      WATCHDOG_CONSECUTIVE: "5",
      WATCHDOG_COOLDOWN_S: "0",
      WATCHDOG_MAX_RESTARTS_PER_HOUR: "0",
      WATCHDOG_EXEC_TIMEOUT_S: "2",
      WATCHDOG_STOP_TIMEOUT_S: "1",
      DOCKER_HOST: "unix:///tmp/x/docker.sock",
      WATCHDOG_METRICS_HOST: "0.0.0.0",
      WATCHDOG_METRICS_PORT: "0",
      LOG_LEVEL: "",
    });
    expect(s).toMatchObject({
      container: "gpu",
      intervalS: 0.2,
      thresholdMiB: 20_000,
      consecutive: 5,
      cooldownS: 0,
      maxRestartsPerHour: 0,
      execTimeoutS: 2,
      stopTimeoutS: 1,
      docker: { kind: "socket", socketPath: "/tmp/x/docker.sock" },
      metrics: { host: "0.0.0.0", port: 0 },
      logLevel: "info",
    });
  });

  it("rejects nonsense with the variable's name", () => {
    expect(() => loadWatchdogSettings({ WATCHDOG_CONSECUTIVE: "0" })).toThrow(
      /WATCHDOG_CONSECUTIVE/,
    );
    expect(() => loadWatchdogSettings({ WATCHDOG_INTERVAL_S: "-1" })).toThrow(
      /WATCHDOG_INTERVAL_S/,
    );
    expect(() => loadWatchdogSettings({ WATCHDOG_THRESHOLD_MIB: "10.5GB" })).toThrow(
      /WATCHDOG_THRESHOLD_MIB/,
    );
    expect(() => loadWatchdogSettings({ DOCKER_HOST: "ssh://me@box" })).toThrow(/DOCKER_HOST/);
    expect(() => loadWatchdogSettings({ LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL/);
    expect(() => loadWatchdogSettings({ WATCHDOG_METRICS_PORT: "70000" })).toThrow(
      /WATCHDOG_METRICS_PORT/,
    );
  });

  it("understands the DOCKER_HOST forms", () => {
    expect(parseDockerHost("unix:///run/docker.sock")).toEqual({
      kind: "socket",
      socketPath: "/run/docker.sock",
    });
    expect(parseDockerHost("/run/user/1000/podman/podman.sock")).toEqual({
      kind: "socket",
      socketPath: "/run/user/1000/podman/podman.sock",
    });
    expect(parseDockerHost("tcp://10.0.0.2:2375")).toEqual({
      kind: "tcp",
      host: "10.0.0.2",
      port: 2375,
    });
    expect(parseDockerHost("tcp://docker")).toEqual({ kind: "tcp", host: "docker", port: 2375 });
  });
});
