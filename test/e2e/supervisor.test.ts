/**
 * `npm start` heals itself: a GPU node killed under it is restarted while the edge keeps
 * answering, and Ctrl-C still stops both (nothing left running).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModels } from "../../gpu-node/models/tiny/cli.ts";
import { freePort, startProcess, waitFor } from "../support/process.ts";

let dir: string;
let models: { hermes: string; phi3: string };
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "supervisor-"));
  models = await writeTinyModels(path.join(dir, "models"), 11);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The child pids the supervisor logged for a service, in start order. */
function childPids(output: string, service: string): number[] {
  const pids: number[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { name?: string; service?: string; child_pid?: number };
      if (entry.name === "supervisor" && entry.service === service && entry.child_pid) {
        pids.push(entry.child_pid);
      }
    } catch {
      // a service's line cut by the pipe: not ours
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm start supervises both services", () => {
  it("restarts a killed GPU node while the edge keeps answering; Ctrl-C stops both", async () => {
    const ports = { edge: await freePort(), gpu: await freePort() };
    const proc = startProcess("npm", ["start"], {
      PORT: String(ports.edge),
      GPU_NODE_PORT: String(ports.gpu),
      GPU_NODE_URL: `http://127.0.0.1:${ports.gpu}`,
      HERMES_MODEL_PATH: models.hermes,
      PHI3_MODEL_DIR: models.phi3,
      HERMES_THREADS: "1",
      PHI3_THREADS: "1",
      HERMES_CTX: "512",
      DATA_DIR: path.join(dir, "data"),
      DATABASE_URL: "",
    });
    const base = `http://127.0.0.1:${ports.edge}`;
    const health = async () => {
      const res = await fetch(`${base}/health`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    try {
      await waitFor(async () => (await health()).status === 200, "/health ok", 90_000, proc);
      const [gpuPid] = childPids(proc.output(), "gpu");
      const [edgePid] = childPids(proc.output(), "edge");
      expect(gpuPid).toBeGreaterThan(0);
      expect(edgePid).toBeGreaterThan(0);

      process.kill(gpuPid as number, "SIGKILL");
      // The edge stays up and says the node is gone.
      const down = await waitFor(
        async () => {
          const h = await health();
          return h.status === 503 ? h : undefined;
        },
        "/health 503 while the GPU node is down",
        30_000,
        proc,
      );
      expect(down.body.status).not.toBe("ok");
      expect(alive(edgePid as number)).toBe(true);

      // The supervisor brings the node back, and it serves.
      await waitFor(async () => (await health()).status === 200, "/health ok again", 90_000, proc);
      const pids = childPids(proc.output(), "gpu");
      expect(pids.length).toBe(2);
      expect(pids[1]).not.toBe(gpuPid);
      expect(proc.output()).toMatch(/gpu exited \(signal SIGKILL\); restarting in \d+ ms/);
      const res = await fetch(`${base}/generate/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "Hello again", max_length: 8 }),
      });
      expect(res.status).toBe(200);

      // Ctrl-C (SIGINT to the whole group, as a terminal sends it) stops everything.
      // (npm itself then dies of the SIGINT, so its exit code says nothing about ours.)
      await proc.stop("SIGINT");
      expect(proc.output()).toContain("all services stopped");
      expect(proc.output()).not.toMatch(
        /restarting in \d+ ms[\s\S]*all services stopped[\s\S]*started/,
      );
      for (const pid of [...childPids(proc.output(), "gpu"), edgePid as number]) {
        expect(alive(pid), `pid ${pid} still running`).toBe(false);
      }
    } finally {
      await proc.stop("SIGKILL");
    }
  });
});
