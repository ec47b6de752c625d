/**
 * `npm run export:jsonl` on the embedded PGlite directory while the edge has it open: refused,
 * naming the running edge and the HTTP export, without opening the directory a second time.
 * Once the edge has stopped, the same command exports everything.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startEdge } from "../../edge/node-runtime/server.ts";
import { type StandInGpuNode, startStandInGpuNode } from "../support/stand-in-gpu-node.ts";

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), "llm-sidecar-lock-"));
let gpu: StandInGpuNode;

beforeAll(async () => {
  gpu = await startStandInGpuNode();
});
afterAll(async () => {
  await gpu?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The CLI as `npm run export:jsonl` runs it (tsx), in its own process. */
async function exportCli(out: string): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(
      process.execPath,
      ["--import", "tsx", "edge/export-cli.ts", "--kind", "log", "--out", out],
      { env: { ...process.env, DATA_DIR: dir, DATABASE_URL: "" }, timeout: 120_000 },
    );
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? "" };
  }
}

it("refuses while the edge runs, naming it and the HTTP export; exports once it stopped", async () => {
  const edge = await startEdge(
    { DATA_DIR: dir, PORT: "0", GPU_NODE_URL: gpu.url, JSONL_MIRROR: "false" },
    { logger: pino({ level: "silent" }) },
  );
  let closed = false;
  try {
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${edge.url}/generate/phi3/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: `IBM ${i}?` }),
      });
      expect(res.status).toBe(200);
    }
    const out = path.join(dir, "while-running.jsonl");
    const refused = await exportCli(out);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`the edge running at ${edge.url}`);
    expect(refused.stderr).toContain(`${edge.url}/feedback/phi3/export?kind=log`);
    expect(existsSync(out)).toBe(false);

    // The edge was not disturbed: its own export still has all five.
    const lines = (await (await fetch(`${edge.url}/feedback/phi3/export?kind=log`)).text())
      .trim()
      .split("\n");
    expect(lines).toHaveLength(5);

    await edge.close();
    closed = true;
    const after = path.join(dir, "after-stop.jsonl");
    const ok = await exportCli(after);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(after, "utf8").trim().split("\n")).toHaveLength(5);
  } finally {
    if (!closed) await edge.close();
  }
}, 240_000);
