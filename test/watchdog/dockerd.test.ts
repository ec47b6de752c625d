/**
 * The watchdog against a real Docker engine (dockerd started here, in a temporary directory), with a
 * container named like the GPU service whose `nvidia-smi` answers what each test says.
 *
 * In CI (CI=true) missing engine binaries FAIL these tests: run `.ci/install-docker.sh` first.
 * Elsewhere they are skipped, with the reason in the suite's name.
 *
 * WATCHDOG_TEST_DOCKER_HOST=unix:///var/run/docker.sock uses an engine that is already running
 * instead (GitHub's runners: the tests cannot start dockerd as root there); the test container then
 * gets a unique name and everything created is removed afterwards.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type Docker from "dockerode";
import pino from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createDockerode, DockerodeRuntime } from "../../gpu-node/watchdog/docker.ts";
import { NVIDIA_SMI_QUERY } from "../../gpu-node/watchdog/nvidia-smi.ts";
import { loadWatchdogSettings, parseDockerHost } from "../../gpu-node/watchdog/settings.ts";
import { Watchdog } from "../../gpu-node/watchdog/watchdog.ts";
import {
  FakeNvidiaSmi,
  findDockerTools,
  importFakeGpuImage,
  runFakeGpuContainer,
  startDockerd,
  startedAt,
  type TestEngine,
  useRunningEngine,
} from "./dockerd.ts";

const running = process.env.WATCHDOG_TEST_DOCKER_HOST?.trim() || undefined;
const runningSocket = running ? parseDockerHost(running) : undefined;
/** Named like the GPU service; unique when the engine is shared. */
const NAME = running ? `llm-sidecar-${randomBytes(3).toString("hex")}` : "llm-sidecar";
const found = findDockerTools();
// A running engine needs only the image's busybox; otherwise the whole engine.
const missing = running ? found.missing.filter((m) => m.includes("busybox")) : found.missing;
const inCI = process.env.CI === "true";
const skip = missing.length > 0 && !inCI;
const title = skip
  ? `watchdog on a real dockerd: SKIPPED, missing ${missing.join(", ")} (run .ci/install-docker.sh as root)`
  : `watchdog on a real dockerd (${running ? `running engine ${running}` : "started by the test"})`;

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function capturingLogger() {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}

/** Runs a command to completion, collecting its output. */
function runProcess(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, cwd: process.cwd() });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(skip)(title, () => {
  let engine: TestEngine;
  let fake: FakeNvidiaSmi;
  let container: Docker.Container;

  beforeAll(async () => {
    if (missing.length > 0 || !found.busybox) {
      throw new Error(
        `CI=true and the Docker engine tools are missing: ${missing.join(", ")}. ` +
          "Run `bash .ci/install-docker.sh` (as root) before `npm test`.",
      );
    }
    if (runningSocket) {
      if (runningSocket.kind !== "socket")
        throw new Error("WATCHDOG_TEST_DOCKER_HOST must be a socket");
      engine = await useRunningEngine(runningSocket.socketPath);
    } else {
      if (!found.dockerd) throw new Error("dockerd not found");
      engine = await startDockerd(found.dockerd);
    }
    await importFakeGpuImage(engine, found.busybox);
  }, 90_000);

  afterAll(async () => {
    await engine?.stop();
  }, 60_000);

  beforeEach(async () => {
    fake = await FakeNvidiaSmi.create(engine.dir);
    await fake.reports(1_000);
    container = await runFakeGpuContainer(engine, NAME, fake);
  });

  afterEach(async () => {
    await container.remove({ force: true }).catch(() => {});
  });

  function watchdog(env: Record<string, string> = {}, socket = engine.dockerHost) {
    const settings = loadWatchdogSettings({
      DOCKER_HOST: socket,
      WATCHDOG_CONTAINER: NAME,
      WATCHDOG_INTERVAL_S: "0.2",
      WATCHDOG_STOP_TIMEOUT_S: "1",
      WATCHDOG_EXEC_TIMEOUT_S: "5",
      ...env,
    });
    const { logger, lines } = capturingLogger();
    const runtime = new DockerodeRuntime(createDockerode(settings.docker, 30_000), logger);
    return { dog: new Watchdog({ runtime, settings, logger }), lines };
  }

  it("three high readings restart the container: State.StartedAt changes, readings logged", async () => {
    const { dog, lines } = watchdog();
    const before = await startedAt(container);
    await fake.reports(11_000);

    const first = await dog.check();
    const second = await dog.check();
    expect([first.decision.action, second.decision.action]).toEqual(["none", "none"]);
    expect(await startedAt(container)).toBe(before);

    const third = await dog.check();
    expect(third.decision.action).toBe("restart");
    expect(third.restart?.confirmed).toBe(true);
    const after = await startedAt(container);
    expect(after).not.toBe(before);
    expect(third.restart).toMatchObject({ startedAtBefore: before, startedAtAfter: after });
    expect((await container.inspect()).State.Running).toBe(true);

    // nvidia-smi ran inside the container with the exact query, once per check.
    expect(await fake.calls()).toEqual(Array(3).fill(NVIDIA_SMI_QUERY.slice(1).join(" ")));
    // One line per check, and the restart logged with the readings that caused it.
    const checks = lines.filter((l) => "action" in l);
    expect(checks.map((l) => l.action)).toEqual(["none", "none", "restart"]);
    expect(checks[0]?.gpus).toEqual([{ index: 0, usedMiB: 11_000, totalMiB: 24_576 }]);
    const restarted = lines.find((l) => l.msg === `restarted ${NAME}`);
    expect(restarted?.evidence).toEqual([{ gpu: 0, usedMiB: [11_000, 11_000, 11_000] }]);
  });

  it("two high readings do not restart it, and a low one starts the count over", async () => {
    const { dog } = watchdog();
    const before = await startedAt(container);
    await fake.reports(11_000);
    await dog.check();
    await dog.check();
    await fake.reports(10_500); // exactly the threshold: not above
    const low = await dog.check();
    await fake.reports(11_000);
    const again = [await dog.check(), await dog.check()];
    expect(low.decision).toMatchObject({ action: "none", reason: "below_threshold" });
    expect(again.map((r) => r.decision.streak)).toEqual([1, 2]);
    expect(await startedAt(container)).toBe(before);
  });

  it("a failing nvidia-smi never restarts it, and says why", async () => {
    const { dog, lines } = watchdog({ WATCHDOG_CONSECUTIVE: "1" });
    const before = await startedAt(container);
    await fake.answer({
      stderr: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
      code: 9,
    });
    for (let i = 0; i < 4; i++) {
      const report = await dog.check();
      expect(report.decision.action).toBe("none");
      expect(report.failure).toMatchObject({ kind: "nvidia_smi_failed", exitCode: 9 });
    }
    expect(lines.at(-1)?.msg).toContain("couldn't communicate with the NVIDIA driver");
    expect(lines.at(-1)?.level).toBe(40); // warn
    expect(await startedAt(container)).toBe(before);
  });

  it("garbage output is reported as unparseable and never restarts it", async () => {
    const { dog } = watchdog({ WATCHDOG_CONSECUTIVE: "1" });
    const before = await startedAt(container);
    for (const stdout of ["garbage\n", "", "0, [N/A], 24576\n"]) {
      await fake.answer({ stdout });
      const report = await dog.check();
      expect(report.failure?.kind).toBe("nvidia_smi_unparseable");
      expect(report.decision.action).toBe("none");
    }
    expect(await startedAt(container)).toBe(before);
  });

  it("an nvidia-smi that hangs is cut off by the exec timeout", async () => {
    const { dog } = watchdog({ WATCHDOG_EXEC_TIMEOUT_S: "0.5" });
    await fake.answer({ stdout: "0, 11000, 24576\n", sleepS: 5 });
    const report = await dog.check();
    expect(report.failure?.kind).toBe("exec_timeout");
    expect(report.decision.action).toBe("none");
  });

  it("a missing container is reported and survived; the watchdog works once it is back", async () => {
    const { dog, lines } = watchdog();
    await container.remove({ force: true });
    const missing = await dog.check();
    expect(missing.failure?.kind).toBe("container_missing");
    expect(lines.at(-1)?.msg).toContain(`container ${NAME} not found`);

    container = await runFakeGpuContainer(engine, NAME, fake);
    const before = await startedAt(container);
    await fake.reports(1_000, 11_000); // two GPUs, the second one high
    const reports = [await dog.check(), await dog.check(), await dog.check()];
    expect(reports.map((r) => r.decision.action)).toEqual(["none", "none", "restart"]);
    expect(reports[2]?.decision.evidence).toEqual([{ gpu: 1, usedMiB: [11_000, 11_000, 11_000] }]);
    expect(await startedAt(container)).not.toBe(before);
  });

  it("a stopped container is reported, not restarted", async () => {
    const { dog } = watchdog({ WATCHDOG_CONSECUTIVE: "1" });
    await container.stop({ t: 1 });
    const report = await dog.check();
    expect(report.failure?.kind).toBe("container_not_running");
    expect(report.failure?.message).toContain("exited");
    expect((await container.inspect()).State.Running).toBe(false);
  });

  it("a Docker socket that is gone is reported, not thrown", async () => {
    const { dog } = watchdog({}, `unix://${engine.dir}/no-such.sock`);
    const report = await dog.check();
    expect(report.failure?.kind).toBe("docker_unavailable");
    expect(report.decision.action).toBe("none");
  });

  it("`npm run watchdog -- --once` prints the reading and the decision and restarts nothing", async () => {
    const before = await startedAt(container);
    await fake.reports(11_000, 2_000);
    const result = await runProcess("npm", ["run", "--silent", "watchdog", "--", "--once"], {
      DOCKER_HOST: engine.dockerHost,
      WATCHDOG_CONTAINER: NAME,
      WATCHDOG_CONSECUTIVE: "1",
      LOG_LEVEL: "info",
    });
    expect(result.stderr).not.toContain("vram-watchdog:");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("GPU 0: 11000 / 24576 MiB used  ABOVE threshold");
    expect(result.stdout).toContain("GPU 1: 2000 / 24576 MiB used\n");
    expect(result.stdout).toContain("decision: restart (streak_complete) (--once is a dry run");
    expect(await startedAt(container)).toBe(before);

    await fake.answer({ code: 9, stderr: "no driver\n" });
    const failed = await runProcess("npm", ["run", "--silent", "watchdog", "--", "--once"], {
      DOCKER_HOST: engine.dockerHost,
      WATCHDOG_CONTAINER: NAME,
    });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("reading failed (nvidia_smi_failed)");
    expect(failed.stdout).toContain("decision: none (reading_failed)");
  });

  it("the watchdog process restarts the container on its own and stops on SIGTERM", async () => {
    const before = await startedAt(container);
    await fake.reports(11_000);
    const child = spawn(process.execPath, ["--import", "tsx", "gpu-node/watchdog/main.ts"], {
      env: {
        ...process.env,
        DOCKER_HOST: engine.dockerHost,
        WATCHDOG_CONTAINER: NAME,
        WATCHDOG_INTERVAL_S: "0.2",
        WATCHDOG_STOP_TIMEOUT_S: "1",
        WATCHDOG_CONSECUTIVE: "3",
        LOG_LEVEL: "info",
      },
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const deadline = Date.now() + 30_000;
      while ((await startedAt(container)) === before && Date.now() < deadline) await sleep(200);
      expect(await startedAt(container)).not.toBe(before);
      await fake.reports(1_000); // calm again
      const deadline2 = Date.now() + 10_000;
      while (!stdout.includes(`"msg":"restarted ${NAME}"`) && Date.now() < deadline2) {
        await sleep(100);
      }
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    const lines = stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as LogLine);
    expect(lines[0]?.msg).toBe("VRAM watchdog started");
    const restart = lines.find((l) => l.msg === `restarted ${NAME}`);
    expect(restart?.evidence).toEqual([{ gpu: 0, usedMiB: [11_000, 11_000, 11_000] }]);
    expect(lines.at(-1)?.msg).toBe("VRAM watchdog stopping");
  });
});
