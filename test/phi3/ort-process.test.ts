/**
 * What loading Phi-3 leaves behind in a real process: no `mat-debug-<pid>.log` (onnxruntime-node's
 * telemetry layer creates an empty one per process) and no red "Failed to load library" line when
 * PHI3_DEVICE=cuda meets an install without the CUDA provider. Native code writes to the file
 * system and to fd 2 directly, so each case runs in its own child process with its own TMPDIR.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";
import { ortDebugLogPath } from "../../gpu-node/phi3/ort-process.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const ORT = createRequire(join(ROOT, "package.json")).resolve("onnxruntime-node");
const debugLogs = (files: string[]) => files.filter((f) => /^mat-debug-\d+\.log$/.test(f));
let dir: string;
let model: string;

/** Runs `body` (ES module code) under tsx with TMPDIR set to a fresh folder. */
async function child(name: string, body: string) {
  const script = join(dir, `${name}.mts`);
  await writeFile(script, body);
  const tmp = await mkdtemp(join(dir, `${name}-tmp-`));
  const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", script], {
    cwd: ROOT,
    env: { ...process.env, TMPDIR: tmp },
  });
  return { stdout, stderr, debugLogs: debugLogs(await readdir(tmp)) };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ort-process-"));
  model = join(dir, "phi3-tiny");
  await writeTinyPhi3(model, { seed: 5 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("onnxruntime-node in our processes", () => {
  it("names the debug log after TMPDIR and the pid", () => {
    expect(ortDebugLogPath({ TMPDIR: "/x" }, 42)).toBe("/x/mat-debug-42.log");
    expect(ortDebugLogPath({}, 7)).toBe("/tmp/mat-debug-7.log");
  });

  it("the empty debug log a bare ONNX Runtime session leaves is what our cleanup removes", async () => {
    const bare = await child(
      "bare",
      `import { existsSync } from "node:fs";
       import ort from ${JSON.stringify(ORT)};
       import { removeOrtDebugLog } from ${JSON.stringify(join(ROOT, "gpu-node/phi3/ort-process.ts"))};
       const s = await ort.InferenceSession.create(${JSON.stringify(join(model, "model.onnx"))});
       // The telemetry layer may create the file from its own thread a moment later (and in some
       // runs, loaded or not, not at all: then there is nothing to clean up).
       const log = (process.env.TMPDIR || "/tmp") + "/mat-debug-" + process.pid + ".log";
       for (let i = 0; i < 100 && !existsSync(log); i++) await new Promise((r) => setTimeout(r, 50));
       const before = existsSync(log);
       const removed = removeOrtDebugLog(log);
       await s.release();
       console.log(JSON.stringify({ before, removed, after: existsSync(log) }));`,
    );
    const report = JSON.parse(bare.stdout.trim().split("\n").at(-1) ?? "{}") as {
      before?: boolean;
      removed?: boolean;
      after?: boolean;
    };
    expect(report.removed).toBe(report.before);
    expect(report.after).toBe(false);
    expect(bare.debugLogs).toEqual([]);
  });

  it("loading Phi-3 leaves no debug log, and PHI3_DEVICE=cuda without the provider fails quietly", async () => {
    const { stdout, stderr, debugLogs } = await child(
      "ours",
      `import { loadPhi3 } from ${JSON.stringify(join(ROOT, "gpu-node/phi3/index.ts"))};
       const dir = ${JSON.stringify(model)};
       const rt = await loadPhi3({ modelDir: dir, device: "cpu", threads: 1 }, {});
       await rt.dispose();
       const error = await loadPhi3({ modelDir: dir, device: "cuda", threads: 1 }, {}).catch((e) => e);
       console.log(JSON.stringify({ cuda: error instanceof Error ? error.message : "loaded" }));`,
    );
    expect(debugLogs).toEqual([]);
    const { cuda } = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { cuda?: string };
    // On a machine with the CUDA provider installed this test is about the debug log only.
    if (cuda !== "loaded") {
      expect(cuda).toMatch(/CUDA execution provider/);
      expect(cuda).toContain("ONNXRUNTIME_NODE_INSTALL=cuda12");
    }
    expect(stderr).not.toMatch(/Failed to load library|\[E:onnxruntime/);
  });
});
