import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  DEFAULT_HERMES_FILE,
  DEFAULT_PHI3_DIR_CPU,
  DEFAULT_PHI3_DIR_CUDA,
  HERMES_REPO,
  PHI3_REPO,
  PHI3_VARIANTS,
} from "../../gpu-node/models/catalog.ts";
import { ChecksumError, type PullOptions, pullModels } from "../../gpu-node/models/pull.ts";
import { tinyHermesGguf } from "../../gpu-node/models/tiny/hermes.ts";
import { type FakeHub, startFakeHub } from "./hub-server.ts";

const hermesQ4 = tinyHermesGguf({ seed: 5 });
const hermesQ8 = tinyHermesGguf({ seed: 6 });
const genaiConfig = Buffer.from('{"model":{"type":"phi3"}}\n');
/** Larger than ipull's 5 MiB chunks, so a download is several ranged requests. */
const bigData = randomBytes(12 * 1024 * 1024 + 4321);
const cpuOnnx = randomBytes(40_000);
const cuda = PHI3_VARIANTS.cuda;
const cpu = PHI3_VARIANTS.cpu;

let hub: FakeHub;
let modelsDir: string;

beforeAll(async () => {
  hub = await startFakeHub({
    [HERMES_REPO]: {
      "Hermes-3-Llama-3.1-8B.Q4_K_M.gguf": hermesQ4,
      "Hermes-3-Llama-3.1-8B.Q8_0.gguf": hermesQ8,
      "README.md": Buffer.from("# Hermes\n"),
    },
    [PHI3_REPO]: {
      [`${cuda}/genai_config.json`]: genaiConfig,
      [`${cuda}/model.onnx.data`]: bigData,
      [`${cpu}/genai_config.json`]: genaiConfig,
      [`${cpu}/model.onnx`]: cpuOnnx,
      "README.md": Buffer.from("# Phi-3\n"),
    },
  });
});
afterAll(async () => {
  await hub.close();
});
beforeEach(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), "pull-"));
  hub.requests.length = 0;
  hub.misbehave = () => undefined;
  hub.tampered.clear();
});
afterEach(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

function options(overrides: Partial<PullOptions> = {}): PullOptions {
  return {
    modelsDir,
    hub: { endpoint: hub.endpoint, token: "hf_test" },
    hermes: { quant: "Q4_K_M" },
    phi3: { variant: cpu },
    logger: pino({ level: process.env.PULL_TEST_LOG ?? "silent" }),
    ...overrides,
  };
}

const resolveRequests = (file: string) =>
  hub.requests.filter((r) => r.path.includes("/resolve/") && r.path.endsWith(file));

describe("models:pull", () => {
  it("downloads Hermes and a Phi-3 variant into the layout the GPU node expects, verified", async () => {
    const progress: string[] = [];
    const results = await pullModels(
      options({ onProgress: (e) => progress.push(`${e.phase}:${e.item.file.path}`) }),
    );
    expect(results.map((r) => r.status)).toEqual(["downloaded", "downloaded", "downloaded"]);
    expect((await readFile(join(modelsDir, DEFAULT_HERMES_FILE))).equals(hermesQ4)).toBe(true);
    expect((await readdir(join(modelsDir, DEFAULT_PHI3_DIR_CPU))).sort()).toEqual([
      "genai_config.json",
      "model.onnx",
    ]);
    expect(
      (await readFile(join(modelsDir, DEFAULT_PHI3_DIR_CPU, "model.onnx"))).equals(cpuOnnx),
    ).toBe(true);
    expect(progress).toContain("verify:Hermes-3-Llama-3.1-8B.Q4_K_M.gguf");
    // HF_TOKEN goes with every listing and download.
    expect(hub.requests.length).toBeGreaterThan(0);
    for (const r of hub.requests) expect(r.authorization).toBe("Bearer hf_test");
    // Only the chosen quantization was fetched.
    expect(resolveRequests("Q8_0.gguf")).toHaveLength(0);

    // A second run finds everything intact and downloads nothing.
    hub.requests.length = 0;
    const again = await pullModels(options());
    expect(again.map((r) => r.status)).toEqual(["present", "present", "present"]);
    expect(hub.requests.filter((r) => r.path.includes("/resolve/"))).toHaveLength(0);
  });

  it("re-downloads a present file whose checksum does not match", async () => {
    const dest = join(modelsDir, DEFAULT_HERMES_FILE);
    await mkdir(join(modelsDir, "hermes"), { recursive: true });
    await writeFile(dest, Buffer.alloc(hermesQ4.length, 1));
    const [result] = await pullModels(options({ phi3: false }));
    expect(result?.status).toBe("downloaded");
    expect((await readFile(dest)).equals(hermesQ4)).toBe(true);
  });

  it("names the available quantizations when HERMES_QUANT has no file", async () => {
    await expect(pullModels(options({ hermes: { quant: "Q2_K" }, phi3: false }))).rejects.toThrow(
      /no Q2_K GGUF.*available quantizations: Q4_K_M, Q8_0/,
    );
  });

  it("fails clearly on a checksum mismatch and leaves no file that looks complete", async () => {
    hub.tampered.add("Hermes-3-Llama-3.1-8B.Q8_0.gguf");
    const err = await pullModels(options({ hermes: { quant: "Q8_0" }, phi3: false })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ChecksumError);
    expect((err as Error).message).toMatch(
      /checksum mismatch for Hermes-3-Llama-3\.1-8B\.Q8_0\.gguf: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/,
    );
    expect((err as Error).message).toContain("deleted");
    expect(await readdir(join(modelsDir, "hermes"))).toEqual([]);
  });

  it("resumes an interrupted download in the next run with ranged requests", async () => {
    const file = "model.onnx.data";
    const dest = join(modelsDir, DEFAULT_PHI3_DIR_CUDA, file);
    // First run: the chunk at the start of the file arrives; the first other chunk's connection
    // drops midway and every other request stalls, as on a dying network.
    let dropped = false;
    let firstChunkServed = false;
    hub.misbehave = (req) => {
      if (!req.path.endsWith(file) || !req.range) return undefined;
      if (req.range.start === 0) {
        firstChunkServed = true;
        return undefined;
      }
      if (!dropped) {
        dropped = true;
        return "drop";
      }
      return "stall";
    };
    const controller = new AbortController();
    const interrupted = pullModels(
      options({ hermes: false, phi3: { variant: cuda }, signal: controller.signal }),
    );
    // Generous: on a loaded 2-core CI machine the downloader can take a while to get going.
    const deadline = Date.now() + 60_000;
    while (!(dropped && firstChunkServed) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(dropped && firstChunkServed).toBe(true);
    // Let the downloader record the finished chunk, then interrupt the run (like Ctrl-C).
    await new Promise((r) => setTimeout(r, 1500));
    controller.abort(new Error("interrupted"));
    await expect(interrupted).rejects.toThrow();
    expect((await readdir(join(modelsDir, DEFAULT_PHI3_DIR_CUDA))).sort()).toContain(
      `${file}.ipull`,
    );
    expect((await readdir(join(modelsDir, DEFAULT_PHI3_DIR_CUDA))).sort()).not.toContain(file);

    // Second run, healthy network: only the missing part is requested, by range.
    hub.misbehave = () => undefined;
    hub.requests.length = 0;
    const results = await pullModels(options({ hermes: false, phi3: { variant: cuda } }));
    expect(results.find((r) => r.dest === dest)?.status).toBe("downloaded");
    expect((await readFile(dest)).equals(bigData)).toBe(true);
    const ranged = resolveRequests(file).filter((r) => r.range);
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.every((r) => (r.range?.start ?? 0) > 0)).toBe(true);
    const bytesRequested = ranged.reduce(
      (n, r) => n + (r.range ? r.range.end - r.range.start + 1 : 0),
      0,
    );
    expect(bytesRequested).toBeLessThan(bigData.length);
  }, 120_000);
});
