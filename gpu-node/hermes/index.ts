/**
 * The Hermes runtime: a GGUF chat model (Hermes-3: ChatML) on node-llama-cpp (llama.cpp), CUDA
 * or CPU. loadHermes checks the file, loads the weights and makes one context whose sequences
 * the runtime (runtime.ts) batches.
 */
import { basename } from "node:path";
import type { Llama, LlamaContext, LlamaModel } from "node-llama-cpp";
import { type Logger, pino } from "pino";
import type { HermesOptions, LoadOptions } from "../runtime.ts";
import { chatMlIds } from "./chatml.ts";
import { checkGgufFile } from "./check.ts";
import { getLlamaForDevice } from "./llama.ts";
import { hermesParallel } from "./parallel.ts";
import { LlamaHermesRuntime } from "./runtime.ts";

export { chatMlIds, chatMlTokens, chatTurns } from "./chatml.ts";
export { checkGgufFile, ModelFileError } from "./check.ts";
export { getLlamaForDevice } from "./llama.ts";
export { hermesParallel } from "./parallel.ts";
export { LlamaHermesRuntime } from "./runtime.ts";
export { StopFilter } from "./stop.ts";

export interface HermesDeps {
  /** The process's one `Llama`; when absent, one is started for `options.gpu` and owned here. */
  llama?: Llama;
  logger?: Logger;
}

/**
 * Loads a Hermes GGUF model. The file is checked first (a broken file is an Error with a message,
 * never a crashed process); progress goes to `load.onProgress`, `load.signal` cancels.
 */
export async function loadHermes(
  options: HermesOptions,
  load: LoadOptions = {},
  deps: HermesDeps = {},
): Promise<LlamaHermesRuntime> {
  const log = (deps.logger ?? pino({ level: "silent" })).child({ model: "hermes" });
  const signal = load.signal;
  // node-llama-cpp's load progress is not monotonic (it may report 1 before the real values);
  // callers get a fraction that never goes back.
  let reported = -1;
  const progress = (fraction: number, phase: string) => {
    if (fraction <= reported) return;
    reported = fraction;
    load.onProgress?.({ fraction, phase });
  };
  if (
    options.parallel !== "auto" &&
    (!Number.isInteger(options.parallel) || options.parallel < 1)
  ) {
    throw new Error(`parallel must be a positive integer, got ${options.parallel}`);
  }

  progress(0, "reading metadata");
  const checked = await checkGgufFile(options.modelPath, { expectedArchitecture: "llama", signal });
  signal?.throwIfAborted();
  log.info(
    { path: options.modelPath, name: checked.name, bytes: checked.fileSize },
    "hermes model file checked",
  );

  progress(0.05, "starting llama.cpp");
  const ownsLlama = deps.llama === undefined;
  const llama =
    deps.llama ?? (await getLlamaForDevice(options.gpu, { threads: options.threads, logger: log }));
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  try {
    if (options.gpu === "cuda" && llama.gpu !== "cuda") {
      throw new Error(
        `CUDA was requested but the given llama.cpp binding uses ${String(llama.gpu)}`,
      );
    }
    const onGpu = options.gpu !== "cpu" && llama.gpu !== false;
    signal?.throwIfAborted();

    progress(0.1, "loading weights");
    model = await llama.loadModel({
      modelPath: options.modelPath,
      // An explicit CUDA request puts every layer on the GPU or fails; "auto" fits what fits.
      gpuLayers: onGpu ? (options.gpu === "cuda" ? "max" : "auto") : 0,
      onLoadProgress: (p) => progress(0.1 + 0.8 * p, "loading weights"),
      loadSignal: signal,
    });
    signal?.throwIfAborted();

    progress(0.9, "creating context");
    const ids = chatMlIds(model);
    const parallel = hermesParallel({
      requested: options.parallel,
      contextSize: options.contextSize,
      kvBytesPerToken: checked.kvBytesPerToken,
      onGpu,
      ...(options.kvBudgetMiB !== undefined ? { kvBudgetMiB: options.kvBudgetMiB } : {}),
      ...(onGpu ? { vramFreeBytes: (await llama.getVramState()).free } : {}),
    });
    context = await model.createContext({
      contextSize: options.contextSize,
      sequences: parallel,
      threads: options.threads > 0 ? options.threads : undefined,
      createSignal: signal,
    });
    progress(1, "ready");

    const deviceName = onGpu ? (await llama.getGpuDeviceNames())[0] : undefined;
    const runtime = new LlamaHermesRuntime({
      llama,
      ownsLlama,
      model,
      context,
      ids,
      modelName: checked.name ?? basename(options.modelPath, ".gguf"),
      device: onGpu ? { kind: "cuda", name: deviceName } : { kind: "cpu" },
      log,
      file: checked.info,
    });
    log.info(
      {
        device: runtime.device,
        context: context.contextSize,
        parallel,
        parallel_setting: options.parallel,
        kv_mib_per_sequence: Math.round((options.contextSize * checked.kvBytesPerToken) / 2 ** 20),
      },
      `hermes ready: ${parallel} sequence(s) of ${context.contextSize} tokens`,
    );
    return runtime;
  } catch (err) {
    await context?.dispose().catch(() => {});
    await model?.dispose().catch(() => {});
    if (ownsLlama) await llama.dispose().catch(() => {});
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}
