import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody, GPU_ROUTES, GpuNodeHealth } from "../../gpu-node/contract/index.ts";
import {
  logLines,
  type RunningNode,
  spawnGpuNode,
  startGpuNode,
} from "../support/gpu-node-process.ts";

const TOKEN = "process-test-token";
let dir: string;
let running: RunningNode | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gpu-node-process-"));
});

afterEach(async () => {
  await running?.stop("SIGKILL");
  running = undefined;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the GPU node process (tsx gpu-node/main.ts)", () => {
  it("serves health with missing models, then exits 0 on SIGTERM", async () => {
    const hermesPath = join(dir, "absent", "hermes.gguf");
    running = await startGpuNode({
      GPU_NODE_TOKEN: TOKEN,
      HERMES_MODEL_PATH: hermesPath,
      PHI3_MODEL_DIR: join(dir, "absent", "phi3"),
      LOG_LEVEL: "info",
    });
    const auth = { Authorization: `Bearer ${TOKEN}` };

    // Loading finishes almost at once when the files are missing; poll until it has.
    let health = GpuNodeHealth.parse(
      await (await fetch(`${running.baseUrl}${GPU_ROUTES.health}`, { headers: auth })).json(),
    );
    for (let i = 0; i < 50 && health.status === "loading"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      health = GpuNodeHealth.parse(
        await (await fetch(`${running.baseUrl}${GPU_ROUTES.health}`, { headers: auth })).json(),
      );
    }
    expect(health).toMatchObject({
      status: "error",
      hermes_loaded: false,
      phi3_loaded: false,
      phi3_model_file_exists: false,
      device: "cpu",
    });
    expect(health.models.hermes.state).toBe("missing");
    expect(health.models.hermes.error).toContain(hermesPath);
    expect(health.models.hermes.error).toContain("npm run models:pull");

    const unauthorized = await fetch(`${running.baseUrl}${GPU_ROUTES.health}`);
    expect(unauthorized.status).toBe(401);

    const generate = await fetch(`${running.baseUrl}${GPU_ROUTES.phi3Generate}`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "x", max_tokens: 5 }),
    });
    expect(generate.status).toBe(503);
    expect(ErrorBody.parse(await generate.json())).toMatchObject({
      code: "model_not_loaded",
      state: "missing",
    });

    const exit = await running.stop("SIGTERM");
    expect(exit).toEqual({ code: 0, signal: null });
    const messages = logLines(running.stdout()).map((line) => line.msg);
    expect(messages).toContain("SIGTERM: shutting down");
    expect(messages).toContain("stopped");
  });

  it.each([
    [{ HERMES_CTX: "lots" }, "HERMES_CTX"],
    [{ GPU_NODE_HOST: "0.0.0.0", GPU_NODE_TOKEN: "" }, "GPU_NODE_TOKEN"],
  ])(
    "refuses to start with bad settings (%j): exit 1, one line naming %s",
    async (env, variable) => {
      const proc = spawnGpuNode(env);
      const exit = await proc.exited;
      expect(exit.code).toBe(1);
      const lines = proc.stderr().trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(variable);
      expect(proc.stdout()).not.toContain("listening");
    },
  );
});
