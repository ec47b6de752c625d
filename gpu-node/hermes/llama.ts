/**
 * Obtaining node-llama-cpp's `Llama` (the loaded llama.cpp binding) for a device choice.
 *
 * node-llama-cpp wants one `getLlama()` per process. Hermes is its only user in the GPU node:
 * loadHermes starts it (and its runtime disposes it), or takes one a caller already has (tests
 * and benchmarks share one across several runtimes). No module singleton.
 */
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import type { Logger } from "pino";
import type { DeviceChoice } from "../runtime.ts";

export interface LlamaOptions {
  /** CPU threads; 0 = node-llama-cpp's default (max(4, cores), which oversubscribes small machines). */
  threads?: number;
  logger?: Logger;
}

function llamaLogger(logger: Logger | undefined) {
  if (!logger) return undefined;
  const log = logger.child({ component: "llama.cpp" });
  return (level: LlamaLogLevel, message: string) => {
    const text = message.trimEnd();
    if (text === "") return;
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) log.error(text);
    else if (level === LlamaLogLevel.warn) log.warn(text);
    else log.debug(text);
  };
}

/**
 * Loads the llama.cpp binding for a device. Never compiles (`build: "never"`): the prebuilt
 * binaries ship in the package. "cuda" that cannot be used throws; "auto" takes CUDA when the
 * library detects it and the CPU otherwise.
 */
export async function getLlamaForDevice(
  choice: DeviceChoice,
  opts: LlamaOptions = {},
): Promise<Llama> {
  const common = {
    build: "never",
    maxThreads: opts.threads && opts.threads > 0 ? opts.threads : undefined,
    logLevel: LlamaLogLevel.warn,
    logger: llamaLogger(opts.logger),
    progressLogs: false,
  } as const;
  if (choice === "cpu") return getLlama({ ...common, gpu: false });
  if (choice === "cuda") {
    let llama: Llama;
    try {
      llama = await getLlama({ ...common, gpu: "cuda" });
    } catch (err) {
      // NoBinaryFoundError's message is just its name: say what it means here.
      const why =
        err instanceof Error && err.message !== "NoBinaryFoundError"
          ? err.message
          : "its CUDA prebuilt binary could not be loaded: no NVIDIA driver, or the CUDA 13 runtime libraries are missing";
      throw new Error(
        `CUDA was requested but cannot be used (${why}). Check the NVIDIA driver and the CUDA 13 runtime libraries, or choose gpu "auto" or "cpu".`,
        { cause: err },
      );
    }
    if (llama.gpu !== "cuda") {
      await llama.dispose();
      throw new Error(`CUDA was requested but llama.cpp started with ${String(llama.gpu)}`);
    }
    return llama;
  }
  // Vulkan is excluded: "auto" means CUDA or CPU in this project.
  return getLlama({ ...common, gpu: { type: "auto", exclude: ["vulkan"] } });
}
