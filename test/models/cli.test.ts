import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_HERMES_FILE, HERMES_REPO, PHI3_REPO } from "../../gpu-node/models/catalog.ts";
import { tinyHermesGguf } from "../../gpu-node/models/tiny/hermes.ts";
import { type FakeHub, startFakeHub } from "./hub-server.ts";

const run = promisify(execFile);
// An absolute loader path, so the commands also run from a folder outside the repository.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const cli = (name: string) => join(import.meta.dirname, "..", "..", "gpu-node", "models", name);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "models-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("models:tiny", () => {
  it("writes both tiny models, says what it wrote, and repeats itself byte for byte", async () => {
    const out = (n: string) => join(dir, n);
    const first = await run(process.execPath, [
      "--import",
      "tsx",
      cli("tiny/cli.ts"),
      "--out",
      out("a"),
      "--seed",
      "9",
    ]);
    await run(process.execPath, [
      "--import",
      "tsx",
      cli("tiny/cli.ts"),
      "--out",
      out("b"),
      "--seed",
      "9",
    ]);
    expect(first.stdout).toContain(`wrote ${join(out("a"), "hermes-tiny.gguf")}`);
    expect(first.stdout).toContain(join(out("a"), "phi3-tiny"));
    const hermesA = await readFile(join(out("a"), "hermes-tiny.gguf"));
    expect(hermesA.equals(await readFile(join(out("b"), "hermes-tiny.gguf")))).toBe(true);
    expect(hermesA.equals(tinyHermesGguf({ seed: 9 }))).toBe(true);
    const phi3Files = (await readdir(join(out("a"), "phi3-tiny"))).sort();
    expect(phi3Files).toContain("genai_config.json");
    for (const f of phi3Files) {
      const a = await readFile(join(out("a"), "phi3-tiny", f));
      expect(a.equals(await readFile(join(out("b"), "phi3-tiny", f))), f).toBe(true);
    }
  });

  it("refuses a bad seed", async () => {
    await expect(
      run(process.execPath, ["--import", TSX, cli("tiny/cli.ts"), "--out", dir, "--seed", "x"]),
    ).rejects.toMatchObject({ stderr: expect.stringContaining("--seed must be an integer") });
  });
});

describe("models:pull command", () => {
  let hub: FakeHub;
  beforeAll(async () => {
    hub = await startFakeHub({
      [HERMES_REPO]: { "Hermes-3-Llama-3.1-8B.Q4_K_M.gguf": tinyHermesGguf({ seed: 2 }) },
      [PHI3_REPO]: {},
    });
  });
  afterAll(async () => {
    await hub.close();
  });

  it("honours MODELS_DIR, HF_ENDPOINT and HF_TOKEN", async () => {
    const modelsDir = join(dir, "pulled");
    const { stdout } = await run(
      process.execPath,
      ["--import", TSX, cli("pull-cli.ts"), "--only", "hermes"],
      {
        env: {
          ...process.env,
          MODELS_DIR: modelsDir,
          HF_ENDPOINT: hub.endpoint,
          HF_TOKEN: "hf_cli",
          LOG_LEVEL: "warn",
        },
        cwd: dir,
      },
    );
    expect(stdout).toContain(`downloaded ${join(modelsDir, DEFAULT_HERMES_FILE)}`);
    expect(
      (await readFile(join(modelsDir, DEFAULT_HERMES_FILE))).equals(tinyHermesGguf({ seed: 2 })),
    ).toBe(true);
    expect(hub.requests.every((r) => r.authorization === "Bearer hf_cli")).toBe(true);
  });

  it("exits non-zero with the reason when the hub does not have the model", async () => {
    const err = await run(
      process.execPath,
      ["--import", TSX, cli("pull-cli.ts"), "--only", "phi3", "--phi3-variant", "cpu"],
      {
        env: {
          ...process.env,
          MODELS_DIR: join(dir, "none"),
          HF_ENDPOINT: hub.endpoint,
          LOG_LEVEL: "warn",
        },
        cwd: dir,
      },
    ).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toMatch(
      /models:pull failed: .*Phi-3-mini-4k-instruct-onnx has no files in cpu_and_mobile/,
    );
  });
});
