import { describe, expect, it } from "vitest";
import {
  DEFAULT_HERMES_FILE,
  DEFAULT_PHI3_DIR_CPU,
  DEFAULT_PHI3_DIR_CUDA,
} from "../../gpu-node/models/catalog.ts";
import {
  DEFAULT_HERMES_SYSTEM_PROMPT,
  defaultThreads,
  isLoopbackHost,
  parseGpuNodeSettings,
  SettingsError,
} from "../../gpu-node/settings.ts";

const opts = { cwd: "/srv/app", logicalCores: 8, nvidiaGpu: false };

function errorOf(env: Record<string, string>): SettingsError {
  try {
    parseGpuNodeSettings(env, opts);
  } catch (error) {
    if (error instanceof SettingsError) return error;
    throw error;
  }
  throw new Error("expected a SettingsError");
}

describe("parseGpuNodeSettings", () => {
  it("has the documented defaults", () => {
    const s = parseGpuNodeSettings({}, opts);
    expect(s).toEqual({
      host: "127.0.0.1",
      port: 8001,
      token: undefined,
      modelsDir: "/srv/app/models",
      hermes: {
        modelPath: `/srv/app/models/${DEFAULT_HERMES_FILE}`,
        contextSize: 6144,
        gpu: "auto",
        parallel: "auto",
        kvBudgetMiB: undefined,
        threads: 4,
        systemPrompt: DEFAULT_HERMES_SYSTEM_PROMPT,
        queueMax: 8,
      },
      phi3: {
        modelDir: `/srv/app/models/${DEFAULT_PHI3_DIR_CPU}`,
        device: "auto",
        threads: 4,
        parallel: 4,
        kvTokens: 2048,
        queueMax: 8,
      },
      maxRequestMs: 120_000,
      shutdownGraceMs: 10_000,
      logLevel: "info",
    });
  });

  it("reads every variable", () => {
    const s = parseGpuNodeSettings(
      {
        GPU_NODE_HOST: "0.0.0.0",
        GPU_NODE_PORT: "9001",
        GPU_NODE_TOKEN: " secret ",
        MODELS_DIR: "/models",
        HERMES_MODEL_PATH: "custom/h.gguf",
        HERMES_CTX: "2048",
        HERMES_GPU: "CUDA",
        HERMES_PARALLEL: "3",
        HERMES_KV_BUDGET_MIB: "2048",
        HERMES_THREADS: "0",
        HERMES_SYSTEM_PROMPT: "Be brief.",
        HERMES_QUEUE_MAX: "0",
        PHI3_MODEL_DIR: "/opt/phi3",
        PHI3_DEVICE: "cpu",
        PHI3_THREADS: "2",
        PHI3_PARALLEL: "6",
        PHI3_KV_TOKENS: "8192",
        PHI3_QUEUE_MAX: "20",
        GPU_NODE_MAX_REQUEST_MS: "5000",
        SHUTDOWN_GRACE_MS: "0",
        LOG_LEVEL: "debug",
      },
      opts,
    );
    expect(s.host).toBe("0.0.0.0");
    expect(s.port).toBe(9001);
    expect(s.token).toBe("secret");
    expect(s.modelsDir).toBe("/models");
    // An explicit relative path is relative to the working directory, not MODELS_DIR.
    expect(s.hermes).toEqual({
      modelPath: "/srv/app/custom/h.gguf",
      contextSize: 2048,
      gpu: "cuda",
      parallel: 3,
      kvBudgetMiB: 2048,
      threads: 0,
      systemPrompt: "Be brief.",
      queueMax: 0,
    });
    expect(s.phi3).toEqual({
      modelDir: "/opt/phi3",
      device: "cpu",
      threads: 2,
      parallel: 6,
      kvTokens: 8192,
      queueMax: 20,
    });
    expect(s.maxRequestMs).toBe(5000);
    expect(s.shutdownGraceMs).toBe(0);
    expect(s.logLevel).toBe("debug");
  });

  it("places default model paths under MODELS_DIR", () => {
    const s = parseGpuNodeSettings({ MODELS_DIR: "data/m" }, opts);
    expect(s.hermes.modelPath).toBe(`/srv/app/data/m/${DEFAULT_HERMES_FILE}`);
    expect(s.phi3.modelDir).toBe(`/srv/app/data/m/${DEFAULT_PHI3_DIR_CPU}`);
  });

  it("defaults to the Phi-3 export models:pull fetches for the device", () => {
    const withGpu = { ...opts, nvidiaGpu: true };
    expect(parseGpuNodeSettings({}, withGpu).phi3.modelDir).toBe(
      `/srv/app/models/${DEFAULT_PHI3_DIR_CUDA}`,
    );
    expect(parseGpuNodeSettings({ PHI3_DEVICE: "cpu" }, withGpu).phi3.modelDir).toBe(
      `/srv/app/models/${DEFAULT_PHI3_DIR_CPU}`,
    );
    expect(parseGpuNodeSettings({ PHI3_DEVICE: "cuda" }, opts).phi3.modelDir).toBe(
      `/srv/app/models/${DEFAULT_PHI3_DIR_CUDA}`,
    );
  });

  it("treats empty values as unset (a copied .env.template)", () => {
    const s = parseGpuNodeSettings({ GPU_NODE_TOKEN: "", HERMES_CTX: "", LOG_LEVEL: " " }, opts);
    expect(s.token).toBeUndefined();
    expect(s.hermes.contextSize).toBe(6144);
    expect(s.logLevel).toBe("info");
  });

  it("HERMES_PARALLEL is auto or a count", () => {
    expect(parseGpuNodeSettings({ HERMES_PARALLEL: " Auto " }, opts).hermes.parallel).toBe("auto");
    expect(parseGpuNodeSettings({ HERMES_PARALLEL: "4" }, opts).hermes.parallel).toBe(4);
  });

  it("disables a model whose path is `off`", () => {
    const s = parseGpuNodeSettings({ HERMES_MODEL_PATH: "off", PHI3_MODEL_DIR: "OFF" }, opts);
    expect(s.hermes.modelPath).toBeNull();
    expect(s.phi3.modelDir).toBeNull();
  });

  it.each([
    ["GPU_NODE_PORT", "http"],
    ["GPU_NODE_PORT", "70000"],
    ["HERMES_CTX", "12.5"],
    ["HERMES_CTX", "16"],
    ["HERMES_GPU", "rocm"],
    ["HERMES_PARALLEL", "0"],
    ["HERMES_PARALLEL", "many"],
    ["HERMES_KV_BUDGET_MIB", "1"],
    ["HERMES_THREADS", "-1"],
    ["HERMES_QUEUE_MAX", "many"],
    ["PHI3_DEVICE", "gpu"],
    ["PHI3_THREADS", "two"],
    ["PHI3_PARALLEL", "0"],
    ["PHI3_KV_TOKENS", "100"],
    ["PHI3_QUEUE_MAX", "-3"],
    ["GPU_NODE_MAX_REQUEST_MS", "0"],
    ["SHUTDOWN_GRACE_MS", "1e3"],
    ["LOG_LEVEL", "verbose"],
  ])("names the bad variable, never its value: %s=%s", (variable, value) => {
    const error = errorOf({ [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(new RegExp(`^invalid setting ${variable}: `));
    expect(error.message).not.toContain(JSON.stringify(value));
    expect(error.message).not.toContain("\n");
  });

  it("refuses a non-loopback host without a token, naming GPU_NODE_TOKEN", () => {
    const error = errorOf({ GPU_NODE_HOST: "0.0.0.0" });
    expect(error.variable).toBe("GPU_NODE_TOKEN");
    expect(error.message).toMatch(
      /GPU_NODE_TOKEN must be set when GPU_NODE_HOST is not a loopback/,
    );
    expect(error.message).not.toContain("0.0.0.0");
    // An empty token is no token.
    expect(errorOf({ GPU_NODE_HOST: "10.1.2.3", GPU_NODE_TOKEN: "" }).variable).toBe(
      "GPU_NODE_TOKEN",
    );
    expect(
      parseGpuNodeSettings({ GPU_NODE_HOST: "0.0.0.0", GPU_NODE_TOKEN: "t" }, opts).token,
    ).toBe("t");
  });

  it("allows loopback hosts without a token", () => {
    for (const host of ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]) {
      expect(parseGpuNodeSettings({ GPU_NODE_HOST: host }, opts).token).toBeUndefined();
    }
  });
});

describe("isLoopbackHost", () => {
  it("tells loopback from the rest", () => {
    expect(isLoopbackHost("127.0.0.1")).toBe(true);
    expect(isLoopbackHost("LOCALHOST")).toBe(true);
    expect(isLoopbackHost("0.0.0.0")).toBe(false);
    expect(isLoopbackHost("::")).toBe(false);
    expect(isLoopbackHost("192.168.1.10")).toBe(false);
    expect(isLoopbackHost("localhost.example.com")).toBe(false);
  });
});

describe("defaultThreads", () => {
  it("uses about the physical cores, between 1 and 4", () => {
    expect(defaultThreads(1)).toBe(1);
    expect(defaultThreads(2)).toBe(1);
    expect(defaultThreads(6)).toBe(3);
    expect(defaultThreads(32)).toBe(4);
  });
});
