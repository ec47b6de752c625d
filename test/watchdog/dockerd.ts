/**
 * A real, throwaway Docker engine for tests: dockerd from Debian's packages (.ci/install-docker.sh),
 * everything under a temporary directory, no network (bridge none, no iptables), vfs storage so it
 * works on any filesystem. Plus a tiny offline image (static busybox) with a fake `nvidia-smi`
 * whose answer the test controls through a bind-mounted folder.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, closeSync, constants, openSync, readSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";

const SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin"];
/** dockerd and its managed containerd find their helpers (containerd-shim, runc) on PATH. */
export const ENGINE_PATH = [...(process.env.PATH ?? "").split(delimiter), ...SBIN]
  .filter(Boolean)
  .join(delimiter);

function which(name: string): string | undefined {
  for (const dir of ENGINE_PATH.split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A busybox inside an otherwise empty image must be statically linked (no ELF interpreter). */
function isStaticBinary(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(8192);
    const n = readSync(fd, head, 0, head.length, 0);
    const text = head.subarray(0, n).toString("latin1");
    return text.startsWith("\x7fELF") && !/\/ld-linux|ld-musl|\/lib64\/ld/.test(text);
  } finally {
    closeSync(fd);
  }
}

export interface DockerTools {
  dockerd?: string;
  busybox?: string;
  /** What is missing, with the Debian package that provides it. */
  missing: string[];
}

export function findDockerTools(): DockerTools {
  const missing: string[] = [];
  const dockerd = which("dockerd");
  if (!dockerd) missing.push("dockerd (docker.io)");
  if (!which("containerd")) missing.push("containerd (containerd)");
  if (!which("containerd-shim-runc-v2")) missing.push("containerd-shim-runc-v2 (containerd)");
  if (!which("runc")) missing.push("runc (runc)");
  const busybox = ["/bin/busybox", which("busybox")].find(
    (path): path is string => path !== undefined && isExecutable(path) && isStaticBinary(path),
  );
  if (!busybox) missing.push("static busybox (busybox-static)");
  return { dockerd, busybox, missing };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface TestEngine {
  docker: Docker;
  /** Tag of the fake GPU image in this engine. */
  image: string;
  socketPath: string;
  /** DOCKER_HOST for child processes. */
  dockerHost: string;
  dir: string;
  /** Put on every container the tests create (a running engine's cleanup finds them by it). */
  label?: string;
  /** The daemon's log so far (for failure messages). */
  log(): Promise<string>;
  /** Removes every container, stops dockerd (and its containerd), removes the directory. */
  stop(): Promise<void>;
}

export async function startDockerd(dockerdPath: string): Promise<TestEngine> {
  // Short path: unix socket paths are limited to 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), "wd-"));
  const socketPath = join(dir, "docker.sock");
  const configFile = join(dir, "daemon.json");
  const logPath = join(dir, "dockerd.log");
  // Our own (empty) config, so the host's /etc/docker/daemon.json cannot change the test engine.
  await writeFile(configFile, "{}\n");
  const logFd = openSync(logPath, "a");
  const child: ChildProcess = spawn(
    dockerdPath,
    [
      "--config-file",
      configFile,
      "--data-root",
      join(dir, "data"),
      "--exec-root",
      join(dir, "exec"),
      "--pidfile",
      join(dir, "dockerd.pid"),
      "--host",
      `unix://${socketPath}`,
      "--storage-driver",
      "vfs",
      "--bridge",
      "none",
      "--iptables=false",
      "--ip-forward=false",
      "--ip-masq=false",
      "--userland-proxy=false",
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", logFd, logFd], env: { ...process.env, PATH: ENGINE_PATH } },
  );
  closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const log = () => readFile(logPath, "utf8").catch(() => "");

  const docker = new Docker({ socketPath });
  const stop = async () => {
    try {
      const containers = await docker.listContainers({ all: true });
      await Promise.all(
        containers.map((c) =>
          docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => {}),
        ),
      );
    } catch {
      // engine already gone
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const done = await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)]);
      if (!done) {
        child.kill("SIGKILL");
        await exited;
      }
    }
    // dockerd stops its managed containerd on SIGTERM; make sure of it if it was killed.
    const containerdPid = await readFile(join(dir, "exec", "containerd", "containerd.pid"), "utf8")
      .then((text) => Number(text.trim()))
      .catch(() => 0);
    if (containerdPid > 0) {
      try {
        process.kill(containerdPid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = await log();
      await stop();
      throw new Error(
        `dockerd exited during start-up (${child.exitCode ?? child.signalCode}):\n${text}`,
      );
    }
    try {
      await docker.ping();
      break;
    } catch {
      if (Date.now() > deadline) {
        const text = await log();
        await stop();
        throw new Error(`dockerd did not answer within 30 s:\n${text}`);
      }
      await sleep(100);
    }
  }
  return {
    docker,
    image: FAKE_GPU_IMAGE,
    socketPath,
    dockerHost: `unix://${socketPath}`,
    dir,
    log,
    stop,
  };
}

/**
 * Uses an engine that is already running (e.g. a CI runner's, where tests cannot start dockerd
 * as root) instead of starting one. Everything the tests create carries a random suffix and is
 * removed by stop(); nothing else in that engine is touched.
 */
export async function useRunningEngine(socketPath: string): Promise<TestEngine> {
  const dir = await mkdtemp(join(tmpdir(), "wd-"));
  const suffix = randomBytes(4).toString("hex");
  const image = `fake-gpu-${suffix}:test`;
  const label = `watchdog-test-${suffix}`;
  const docker = new Docker({ socketPath });
  await docker.ping();
  const stop = async () => {
    const containers = await docker
      .listContainers({ all: true, filters: { label: [label] } })
      .catch(() => []);
    await Promise.all(
      containers.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {}),
      ),
    );
    await docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => {});
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  return {
    docker,
    image,
    label,
    socketPath,
    dockerHost: `unix://${socketPath}`,
    dir,
    log: async () => "(an engine this test did not start: see its own logs)",
    stop,
  };
}

/** Leftover mounts (shm, overlay) would make the directory impossible to remove. */
async function unmountUnder(dir: string): Promise<void> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  const points = mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point?.startsWith(`${dir}/`) === true)
    .sort((a, b) => b.length - a.length);
  for (const point of points) {
    try {
      execFileSync("umount", ["-l", point], { stdio: "ignore" });
    } catch {
      // best effort; rm reports what is left
    }
  }
}

export const FAKE_GPU_IMAGE = "fake-gpu:test";

/** The fake nvidia-smi: records its arguments, prints what the test put in /ctl, exits with /ctl/code. */
const FAKE_NVIDIA_SMI = `#!/bin/sh
echo "$*" >> /ctl/calls
if [ -f /ctl/sleep ]; then sleep "$(cat /ctl/sleep)"; fi
if [ -f /ctl/stdout ]; then cat /ctl/stdout; fi
if [ -f /ctl/stderr ]; then cat /ctl/stderr >&2; fi
exit "$(cat /ctl/code 2>/dev/null || echo 0)"
`;

/** Imports a busybox rootfs with the fake nvidia-smi as `engine.image`. */
export async function importFakeGpuImage(engine: TestEngine, busybox: string): Promise<void> {
  const root = join(engine.dir, "rootfs");
  await mkdir(join(root, "bin"), { recursive: true });
  await mkdir(join(root, "usr", "bin"), { recursive: true });
  await mkdir(join(root, "ctl"), { recursive: true });
  await writeFile(join(root, "bin", "busybox"), await readFile(busybox));
  await chmod(join(root, "bin", "busybox"), 0o755);
  for (const applet of ["sh", "sleep", "cat", "echo"]) {
    await symlink("busybox", join(root, "bin", applet));
  }
  await writeFile(join(root, "usr", "bin", "nvidia-smi"), FAKE_NVIDIA_SMI, { mode: 0o755 });
  const tarPath = join(engine.dir, "rootfs.tar");
  execFileSync("tar", ["-C", root, "-cf", tarPath, "."]);
  const [repo, tag] = engine.image.split(":") as [string, string];
  const stream = await engine.docker.importImage(tarPath, { repo, tag });
  await new Promise<void>((resolve, reject) =>
    engine.docker.modem.followProgress(stream, (error: Error | null) =>
      error ? reject(error) : resolve(),
    ),
  );
  await rm(root, { recursive: true, force: true });
  await rm(tarPath, { force: true });
}

/** Controls what the fake nvidia-smi answers. */
export class FakeNvidiaSmi {
  constructor(readonly dir: string) {}

  static async create(parent: string): Promise<FakeNvidiaSmi> {
    const dir = await mkdtemp(join(parent, "ctl-"));
    await chmod(dir, 0o777);
    return new FakeNvidiaSmi(dir);
  }

  /** One line per GPU: memory used, MiB (total 24576). */
  async reports(...usedMiB: number[]): Promise<void> {
    await this.answer({
      stdout: usedMiB.map((used, index) => `${index}, ${used}, 24576\n`).join(""),
    });
  }

  async answer(a: {
    stdout?: string;
    stderr?: string;
    code?: number;
    sleepS?: number;
  }): Promise<void> {
    await writeFile(join(this.dir, "stdout"), a.stdout ?? "");
    await writeFile(join(this.dir, "stderr"), a.stderr ?? "");
    await writeFile(join(this.dir, "code"), String(a.code ?? 0));
    if (a.sleepS === undefined) await rm(join(this.dir, "sleep"), { force: true });
    else await writeFile(join(this.dir, "sleep"), String(a.sleepS));
  }

  /** The argument lists it was called with, one per call. */
  async calls(): Promise<string[]> {
    const text = await readFile(join(this.dir, "calls"), "utf8").catch(() => "");
    return text.split("\n").filter(Boolean);
  }
}

/** Runs a long-lived container from the fake image, named like the GPU service. */
export async function runFakeGpuContainer(
  engine: TestEngine,
  name: string,
  fake: FakeNvidiaSmi,
): Promise<Docker.Container> {
  const container = await engine.docker.createContainer({
    name,
    Image: engine.image,
    Labels: engine.label ? { [engine.label]: "1" } : {},
    // PID 1 ignores SIGTERM unless it traps it: exit promptly so restarts take no stop timeout.
    Cmd: ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"],
    HostConfig: { NetworkMode: "none", Binds: [`${fake.dir}:/ctl`] },
  });
  await container.start();
  return container;
}

export async function startedAt(container: Docker.Container): Promise<string> {
  return (await container.inspect()).State.StartedAt;
}
