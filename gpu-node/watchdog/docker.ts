/**
 * The Docker side of the watchdog: a small interface, and one thin dockerode implementation that
 * logs before and after each call (as testcontainers' docker-container-client does). Expected
 * failures (Docker gone, container missing or stopped, exec timed out) are returned as typed
 * values, never thrown, so the watchdog's loop keeps running through them.
 */
import { Writable } from "node:stream";
import Docker from "dockerode";
import type { Logger } from "pino";
import type { DockerEndpoint } from "./settings.ts";

export interface ContainerState {
  id: string;
  name: string;
  running: boolean;
  /** Docker's State.Status: created, running, restarting, exited, paused, dead. */
  status: string;
  /** Docker's State.StartedAt (RFC 3339); changes on every (re)start. */
  startedAt: string;
}

export interface ExecOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type DockerFailureKind =
  | "docker_unavailable"
  | "container_missing"
  | "container_not_running"
  | "exec_timeout"
  | "docker_error";

export interface DockerFailure {
  kind: DockerFailureKind;
  message: string;
}

export type DockerResult<T> = { ok: true; value: T } | { ok: false; failure: DockerFailure };

/** What the watchdog needs from a container engine. */
export interface ContainerRuntime {
  inspect(container: string): Promise<DockerResult<ContainerState>>;
  /** Runs `cmd` in the container (no TTY) and waits for it, at most `timeoutMs`. */
  exec(
    container: string,
    cmd: readonly string[],
    timeoutMs: number,
  ): Promise<DockerResult<ExecOutput>>;
  /** Restarts the container; Docker waits up to `stopTimeoutS` for it to stop, then kills it. */
  restart(container: string, stopTimeoutS: number): Promise<DockerResult<void>>;
}

/** Keeps a runaway exec from filling memory; nvidia-smi's answer is a few lines. */
const MAX_OUTPUT_BYTES = 64 * 1024;

interface DockerodeError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string } | null;
}

/** Maps a dockerode/docker-modem error to a failure a human can act on. */
export function classifyDockerError(error: unknown, container: string): DockerFailure {
  const e = (error ?? {}) as DockerodeError;
  const detail = e.json?.message ?? e.message ?? String(error);
  if (e.code && ["ENOENT", "ECONNREFUSED", "EACCES", "ECONNRESET", "EPIPE"].includes(e.code)) {
    return {
      kind: "docker_unavailable",
      message: `Docker engine unreachable (${e.code}): ${detail}`,
    };
  }
  if (e.statusCode === 404) {
    return { kind: "container_missing", message: `container ${container} not found: ${detail}` };
  }
  if (e.statusCode === 409 && /not running|is paused|is restarting/i.test(detail)) {
    return { kind: "container_not_running", message: `container ${container}: ${detail}` };
  }
  return {
    kind: "docker_error",
    message: `Docker error${e.statusCode ? ` ${e.statusCode}` : ""}: ${detail}`,
  };
}

export function createDockerode(endpoint: DockerEndpoint, requestTimeoutMs?: number): Docker {
  const timeout = requestTimeoutMs === undefined ? {} : { timeout: requestTimeoutMs };
  return endpoint.kind === "socket"
    ? new Docker({ socketPath: endpoint.socketPath, ...timeout })
    : new Docker({ host: endpoint.host, port: endpoint.port, protocol: "http", ...timeout });
}

export class DockerodeRuntime implements ContainerRuntime {
  constructor(
    private readonly docker: Docker,
    private readonly logger: Logger,
  ) {}

  async inspect(container: string): Promise<DockerResult<ContainerState>> {
    this.logger.trace({ container }, "docker: inspecting container");
    try {
      const info = await this.docker.getContainer(container).inspect();
      const value: ContainerState = {
        id: info.Id,
        name: info.Name.replace(/^\//, ""),
        running: info.State.Running,
        status: info.State.Status,
        startedAt: info.State.StartedAt,
      };
      this.logger.trace({ container, state: value }, "docker: inspected container");
      return { ok: true, value };
    } catch (error) {
      return this.fail(container, "inspect", error);
    }
  }

  async exec(
    container: string,
    cmd: readonly string[],
    timeoutMs: number,
  ): Promise<DockerResult<ExecOutput>> {
    this.logger.trace({ container, cmd }, "docker: exec starting");
    try {
      const exec = await this.docker.getContainer(container).exec({
        Cmd: [...cmd],
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      // Without a TTY, Docker multiplexes stdout and stderr on one stream with 8-byte frame headers.
      const stdout = collect();
      const stderr = collect();
      this.docker.modem.demuxStream(stream, stdout.sink, stderr.sink);
      const finished = await new Promise<boolean>((resolve, reject) => {
        const timer = setTimeout(() => {
          stream.destroy();
          resolve(false);
        }, timeoutMs);
        stream.once("end", () => {
          clearTimeout(timer);
          resolve(true);
        });
        stream.once("close", () => {
          clearTimeout(timer);
          resolve(true);
        });
        stream.once("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
      if (!finished) {
        const failure: DockerFailure = {
          kind: "exec_timeout",
          message: `${cmd[0]} did not finish within ${timeoutMs} ms in container ${container}`,
        };
        this.logger.trace({ container, failure }, "docker: exec timed out");
        return { ok: false, failure };
      }
      // The stream can end a moment before Docker records the exit code.
      let info = await exec.inspect();
      for (let i = 0; i < 50 && (info.Running || info.ExitCode === null); i++) {
        await sleep(20);
        info = await exec.inspect();
      }
      if (info.ExitCode === null) {
        return {
          ok: false,
          failure: { kind: "docker_error", message: `no exit code for ${cmd[0]} in ${container}` },
        };
      }
      const value: ExecOutput = {
        exitCode: info.ExitCode,
        stdout: stdout.text(),
        stderr: stderr.text(),
      };
      this.logger.trace({ container, exitCode: value.exitCode }, "docker: exec finished");
      return { ok: true, value };
    } catch (error) {
      return this.fail(container, "exec", error);
    }
  }

  async restart(container: string, stopTimeoutS: number): Promise<DockerResult<void>> {
    this.logger.debug({ container, stopTimeoutS }, "docker: restarting container");
    try {
      await this.docker.getContainer(container).restart({ t: stopTimeoutS });
      this.logger.debug({ container }, "docker: restart returned");
      return { ok: true, value: undefined };
    } catch (error) {
      return this.fail(container, "restart", error);
    }
  }

  private fail(
    container: string,
    op: string,
    error: unknown,
  ): { ok: false; failure: DockerFailure } {
    const failure = classifyDockerError(error, container);
    this.logger.trace({ container, op, failure }, "docker: call failed");
    return { ok: false, failure };
  }
}

/** A sink that keeps what is written synchronously, so all output is in by the stream's end. */
function collect(): { sink: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (size < MAX_OUTPUT_BYTES) chunks.push(chunk);
      size += chunk.length;
      callback();
    },
  });
  return { sink, text: () => Buffer.concat(chunks).toString("utf8").slice(0, MAX_OUTPUT_BYTES) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
