/**
 * Loads both models in the background (main.ts starts it after the server listens) and moves
 * the registry's states, logging progress. The loaders are injected: main.ts passes the real
 * runtimes, tests pass scripted ones.
 */
import { readdir, stat } from "node:fs/promises";
import type { Logger } from "pino";
import type {
  HermesOptions,
  HermesRuntime,
  LoadOptions,
  LoadProgress,
  Phi3Options,
  Phi3Runtime,
} from "../runtime.ts";
import type { GpuNodeSettings } from "../settings.ts";
import type { ModelRegistry, ModelSlot, RuntimeBase } from "./registry.ts";

export interface ModelLoaders {
  hermes: (options: HermesOptions, load: LoadOptions) => Promise<HermesRuntime>;
  phi3: (options: Phi3Options, load: LoadOptions) => Promise<Phi3Runtime>;
}

export interface LoadModelsInput {
  settings: Pick<GpuNodeSettings, "hermes" | "phi3">;
  registry: ModelRegistry;
  loaders: ModelLoaders;
  logger: Logger;
  /** Aborted on shutdown. */
  signal?: AbortSignal;
}

const PULL_HINT = "run `npm run models:pull`";

/** Loads both models at once (a model that loads quickly is ready sooner); never rejects. */
export async function loadModels(input: LoadModelsInput): Promise<void> {
  const { settings, registry, loaders } = input;
  await Promise.all([
    loadOne(input, registry.hermes, "Hermes", checkHermesFile, (path, load) =>
      loaders.hermes(
        {
          modelPath: path,
          contextSize: settings.hermes.contextSize,
          gpu: settings.hermes.gpu,
          parallel: settings.hermes.parallel,
          threads: settings.hermes.threads,
          ...(settings.hermes.kvBudgetMiB !== undefined
            ? { kvBudgetMiB: settings.hermes.kvBudgetMiB }
            : {}),
        },
        load,
      ),
    ),
    loadOne(input, registry.phi3, "Phi-3", checkPhi3Dir, (path, load) =>
      loaders.phi3(
        {
          modelDir: path,
          device: settings.phi3.device,
          threads: settings.phi3.threads,
          parallel: settings.phi3.parallel,
          kvTokens: settings.phi3.kvTokens,
        },
        load,
      ),
    ),
  ]);
}

/** undefined when usable, otherwise why not. */
type FileCheck = (path: string) => Promise<string | undefined>;

async function checkHermesFile(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return `model file not found: ${path} (${PULL_HINT})`;
  if (!info.isFile()) return `model path is not a file: ${path} (expected a .gguf file)`;
  return undefined;
}

/** An onnxruntime-genai folder: the file that matters is its .onnx model. */
async function checkPhi3Dir(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return `model folder not found: ${path} (${PULL_HINT})`;
  if (!info.isDirectory())
    return `model path is not a folder: ${path} (expected an ONNX model folder)`;
  const files = await readdir(path).catch(() => [] as string[]);
  if (!files.some((name) => name.endsWith(".onnx"))) {
    return `no .onnx model file in ${path} (${PULL_HINT})`;
  }
  return undefined;
}

async function loadOne<R extends RuntimeBase>(
  input: LoadModelsInput,
  slot: ModelSlot<R>,
  label: string,
  check: FileCheck,
  load: (path: string, options: LoadOptions) => Promise<R>,
): Promise<void> {
  const path = slot.path;
  const log = input.logger.child({ model: slot.key });
  if (path === null) {
    log.info(`${label} disabled (${slot.pathVariable}=off)`);
    return;
  }
  const missing = await check(path);
  if (missing) {
    slot.markMissing(missing);
    log.error({ path }, `${label} not loaded: ${missing}`);
    return;
  }
  slot.setFileExists(true);

  const started = performance.now();
  let lastLogged = { step: -1, phase: "" };
  const onProgress = (progress: LoadProgress) => {
    slot.markLoading(progress);
    // One line per 10% step or phase change: enough to watch, not enough to flood.
    const step = Math.floor(progress.fraction * 10);
    if (step !== lastLogged.step || progress.phase !== lastLogged.phase) {
      lastLogged = { step, phase: progress.phase };
      log.info(
        { progress: Number(progress.fraction.toFixed(3)), phase: progress.phase },
        `loading ${label}: ${Math.round(progress.fraction * 100)}% (${progress.phase})`,
      );
    }
  };

  log.info({ path }, `loading ${label} from ${path}`);
  onProgress({ fraction: 0, phase: "starting" });
  try {
    const runtime = await load(path, {
      onProgress,
      ...(input.signal ? { signal: input.signal } : {}),
    });
    if (input.signal?.aborted) {
      // Loaded anyway while shutting down: nobody will use it.
      slot.markError("loading cancelled (shutting down)");
      await runtime.dispose();
      return;
    }
    slot.markReady(runtime);
    log.info(
      {
        name: runtime.modelName,
        device: runtime.device,
        load_ms: Math.round(performance.now() - started),
      },
      `${label} ready: ${runtime.modelName} on ${runtime.device.name ?? runtime.device.kind}`,
    );
  } catch (error) {
    if (input.signal?.aborted) {
      slot.markError("loading cancelled (shutting down)");
      log.info(`${label} loading cancelled`);
      return;
    }
    const reason = error instanceof Error ? error.message : String(error);
    slot.markError(`failed to load ${path}: ${reason}`);
    log.error({ err: error, path }, `${label} failed to load: ${reason}`);
  }
}
