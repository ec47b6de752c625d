/**
 * Two things onnxruntime-node does to the process that loads it, and what we do about them.
 *
 * - Its native library carries Microsoft's 1DS telemetry SDK, whose platform layer creates an
 *   empty debug log, `$TMPDIR/mat-debug-<pid>.log` (`/tmp` without TMPDIR), at the first session
 *   creation in each process, and never writes to it. No setting of onnxruntime-node turns it off,
 *   so `removeOrtDebugLog` deletes our own process's file right after that first session, if it is
 *   still empty. (The library keeps its handle; nothing is lost.)
 * - Asking for the CUDA execution provider makes ONNX Runtime load
 *   `libonnxruntime_providers_shared.so`, and when it is not installed (the default install skips
 *   the CUDA download) it prints a red `Failed to load library` line on stderr before throwing.
 *   `cudaProviderFiles` lets the loader check the files first and fail with its own message.
 */
import { existsSync, statSync, unlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The debug log the telemetry layer creates for this process. */
export function ortDebugLogPath(env: NodeJS.ProcessEnv = process.env, pid = process.pid): string {
  return join(env.TMPDIR || "/tmp", `mat-debug-${pid}.log`);
}

/** Deletes this process's empty `mat-debug-<pid>.log`; true when there was one. Never throws. */
export function removeOrtDebugLog(path = ortDebugLogPath()): boolean {
  try {
    if (statSync(path).size !== 0) return false;
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

let cleanupArmed = false;

/**
 * Removes the debug log now, and again shortly after and at exit: the telemetry layer may create
 * it from its own thread a moment after the session is made, later still on a loaded machine.
 */
export function cleanOrtDebugLog(path = ortDebugLogPath()): void {
  removeOrtDebugLog(path);
  if (cleanupArmed) return;
  cleanupArmed = true;
  for (const ms of [100, 1_000, 5_000]) setTimeout(() => removeOrtDebugLog(path), ms).unref();
  process.once("exit", () => removeOrtDebugLog(path));
}

/** Where onnxruntime-node keeps its native libraries for this platform. */
export function ortBinaryDir(): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve("onnxruntime-node");
    return join(dirname(entry), "..", "bin", "napi-v6", process.platform, process.arch);
  } catch {
    return undefined;
  }
}

/** The CUDA provider's libraries that are missing (all of them when the folder is unknown). */
export function missingCudaProviderFiles(dir = ortBinaryDir()): string[] {
  const files = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"];
  if (dir === undefined) return files;
  return files.filter((file) => !existsSync(join(dir, file))).map((file) => join(dir, file));
}
