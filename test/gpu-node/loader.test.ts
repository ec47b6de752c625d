import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGpuNodeApp } from "../../gpu-node/app.ts";
import { GPU_ROUTES, GpuNodeHealth } from "../../gpu-node/contract/index.ts";
import { loadModels } from "../../gpu-node/lifecycle/loader.ts";
import { createModelRegistry } from "../../gpu-node/lifecycle/registry.ts";
import type {
  HermesOptions,
  HermesRuntime,
  LoadOptions,
  Phi3Options,
  Phi3Runtime,
} from "../../gpu-node/runtime.ts";
import { settle } from "./harness.ts";
import { ScriptedHermes, ScriptedPhi3 } from "./scripted-runtime.ts";

let dir: string;
let hermesFile: string;
let phi3Dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gpu-node-loader-"));
  hermesFile = join(dir, "hermes.gguf");
  await writeFile(hermesFile, "GGUF (contents never read by the scripted loader)");
  phi3Dir = join(dir, "phi3");
  await mkdir(phi3Dir);
  await writeFile(join(phi3Dir, "model.onnx"), "onnx");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A loader whose outcome the test decides; it records what it was called with. */
function scriptedLoader<O, R>() {
  const calls: { options: O; load: LoadOptions }[] = [];
  let resolve!: (runtime: R) => void;
  let reject!: (error: unknown) => void;
  const result = new Promise<R>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Tests that expect no call may still settle it; that must not be an unhandled rejection.
  result.catch(() => undefined);
  return {
    calls,
    resolve: (runtime: R) => resolve(runtime),
    reject: (error: unknown) => reject(error),
    load: (options: O, load: LoadOptions) => {
      calls.push({ options, load });
      return result;
    },
  };
}

const settings = (hermesPath: string | null, phi3Path: string | null) => ({
  hermes: {
    modelPath: hermesPath,
    contextSize: 2048,
    gpu: "cpu" as const,
    parallel: 2,
    kvBudgetMiB: undefined,
    threads: 1,
    systemPrompt: "s",
    queueMax: 4,
  },
  phi3: {
    modelDir: phi3Path,
    device: "cpu" as const,
    threads: 1,
    parallel: 2,
    kvTokens: 2048,
    queueMax: 4,
  },
});

function setup(hermesPath: string | null, phi3Path: string | null) {
  const logs: { msg: string; level: number }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const registry = createModelRegistry({
    hermesPath,
    phi3Path,
    hermesQueueMax: 4,
    phi3QueueMax: 4,
  });
  const app = createGpuNodeApp({
    settings: { token: undefined, maxRequestMs: 1000, hermes: { systemPrompt: "s" } },
    logger,
    registry,
  });
  const hermes = scriptedLoader<HermesOptions, HermesRuntime>();
  const phi3 = scriptedLoader<Phi3Options, Phi3Runtime>();
  const abort = new AbortController();
  const health = async () =>
    GpuNodeHealth.parse(await (await app.request(GPU_ROUTES.health)).json());
  const start = () =>
    loadModels({
      settings: settings(hermesPath, phi3Path),
      registry,
      loaders: { hermes: hermes.load, phi3: phi3.load },
      logger,
      signal: abort.signal,
    });
  /** Waits until each enabled model's loader has been called (after its file check). */
  const started = async (models = { hermes: hermesPath !== null, phi3: phi3Path !== null }) => {
    // By time, not by ticks: the file checks go through libuv's thread pool, which a loaded
    // CI machine can hold up for longer than a hundred event-loop turns.
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const hermesWaiting = models.hermes && hermes.calls.length === 0;
      const phi3Waiting = models.phi3 && phi3.calls.length === 0;
      if (!hermesWaiting && !phi3Waiting) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    throw new Error("loaders were not called");
  };
  return { registry, hermes, phi3, abort, health, start, started, logs };
}

describe("background loading and health", () => {
  it("loading -> ok, with progress while loading, and the options passed through", async () => {
    const t = setup(hermesFile, phi3Dir);
    expect((await t.health()).status).toBe("loading");
    const done = t.start();
    await t.started();
    expect(t.hermes.calls[0]?.options).toEqual({
      modelPath: hermesFile,
      contextSize: 2048,
      gpu: "cpu",
      parallel: 2,
      threads: 1,
    });
    expect(t.phi3.calls[0]?.options).toEqual({
      modelDir: phi3Dir,
      device: "cpu",
      threads: 1,
      parallel: 2,
      kvTokens: 2048,
    });

    t.hermes.calls[0]?.load.onProgress?.({ fraction: 0.5, phase: "loading weights" });
    let health = await t.health();
    expect(health.status).toBe("loading");
    expect(health.models.hermes).toMatchObject({ state: "loading", progress: 0.5 });
    expect(health.phi3_model_file_exists).toBe(true);
    expect(t.logs.some((l) => l.msg === "loading Hermes: 50% (loading weights)")).toBe(true);

    t.hermes.resolve(new ScriptedHermes(2));
    await settle();
    health = await t.health();
    expect(health.status).toBe("loading");
    expect(health.hermes_loaded).toBe(true);
    expect(health.models.hermes.queue).toEqual({ running: 0, waiting: 0, capacity: 6 });

    t.phi3.resolve(new ScriptedPhi3());
    await done;
    health = await t.health();
    expect(health).toMatchObject({ status: "ok", hermes_loaded: true, phi3_loaded: true });
  });

  it("loading -> partial_error when one model fails, with the reason", async () => {
    const t = setup(hermesFile, phi3Dir);
    const done = t.start();
    await t.started();
    t.hermes.reject(new Error("unsupported GGUF architecture"));
    t.phi3.resolve(new ScriptedPhi3());
    await done;
    const health = await t.health();
    expect(health.status).toBe("partial_error");
    expect(health.models.hermes).toMatchObject({
      state: "error",
      loaded: false,
      file_exists: true,
      error: `failed to load ${hermesFile}: unsupported GGUF architecture`,
    });
    expect(health.phi3_loaded).toBe(true);
  });

  it("loading -> error when both fail", async () => {
    const t = setup(hermesFile, phi3Dir);
    const done = t.start();
    await t.started();
    t.hermes.reject(new Error("out of memory"));
    t.phi3.reject(new Error("bad genai_config.json"));
    await done;
    const health = await t.health();
    expect(health.status).toBe("error");
    expect(health.models.phi3.error).toContain("bad genai_config.json");
  });

  it("missing files: state missing, the file named with `npm run models:pull`, no loader called", async () => {
    const t = setup(join(dir, "nope.gguf"), join(dir, "no-phi3"));
    await t.start();
    const health = await t.health();
    expect(health.status).toBe("error");
    expect(health.phi3_model_file_exists).toBe(false);
    expect(health.models.hermes).toMatchObject({ state: "missing", file_exists: false });
    expect(health.models.hermes.error).toContain(join(dir, "nope.gguf"));
    expect(health.models.hermes.error).toContain("npm run models:pull");
    expect(health.models.phi3.error).toContain(join(dir, "no-phi3"));
    expect(t.hermes.calls).toHaveLength(0);
    expect(t.phi3.calls).toHaveLength(0);
  });

  it("a Phi-3 folder without an .onnx file counts as missing", async () => {
    const empty = join(dir, "empty-phi3");
    await mkdir(empty, { recursive: true });
    const t = setup(hermesFile, empty);
    const done = t.start();
    await t.started({ hermes: true, phi3: false });
    t.hermes.resolve(new ScriptedHermes());
    await done;
    const health = await t.health();
    expect(health.models.phi3).toMatchObject({ state: "missing", file_exists: false });
    expect(health.models.phi3.error).toContain("no .onnx model file");
    expect(health.status).toBe("partial_error");
  });

  it("a model set to `off` is disabled and never loaded", async () => {
    const t = setup(null, phi3Dir);
    const done = t.start();
    await t.started();
    t.phi3.resolve(new ScriptedPhi3());
    await done;
    const health = await t.health();
    expect(health.models.hermes).toMatchObject({ state: "disabled", path: "off", loaded: false });
    expect(health.status).toBe("partial_error");
    expect(t.hermes.calls).toHaveLength(0);
  });

  it("shutdown during loading cancels it and frees a runtime that loads anyway", async () => {
    const t = setup(hermesFile, phi3Dir);
    const done = t.start();
    await t.started();
    expect(t.hermes.calls[0]?.load.signal?.aborted).toBe(false);
    t.abort.abort();
    expect(t.hermes.calls[0]?.load.signal?.aborted).toBe(true);
    const late = new ScriptedHermes();
    t.hermes.resolve(late);
    t.phi3.reject(new Error("aborted"));
    await done;
    expect(late.disposed).toBe(true);
    expect(t.registry.hermes.state).toBe("error");
    expect(t.registry.hermes.error).toContain("cancelled");
    expect(t.registry.phi3.error).toContain("cancelled");
  });

  it("dispose frees ready runtimes", async () => {
    const t = setup(hermesFile, phi3Dir);
    const done = t.start();
    await t.started();
    const hermes = new ScriptedHermes();
    const phi3 = new ScriptedPhi3();
    t.hermes.resolve(hermes);
    t.phi3.resolve(phi3);
    await done;
    await Promise.all([t.registry.hermes.dispose(), t.registry.phi3.dispose()]);
    expect(hermes.disposed && phi3.disposed).toBe(true);
    expect(t.registry.hermes.ready()).toBeUndefined();
  });
});
