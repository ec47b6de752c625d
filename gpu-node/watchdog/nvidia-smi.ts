import type { GpuMemory } from "./policy.ts";

/** The exact query the watchdog runs inside the GPU container: one line per GPU, MiB, no units. */
export const NVIDIA_SMI_QUERY = [
  "nvidia-smi",
  "--query-gpu=index,memory.used,memory.total",
  "--format=csv,noheader,nounits",
] as const;

export type ParseResult = { ok: true; gpus: GpuMemory[] } | { ok: false; error: string };

const INTEGER = /^\d+$/;

/**
 * Parses the output of {@link NVIDIA_SMI_QUERY}, e.g. `0, 1234, 24576`. Anything unexpected (a
 * missing column, "[N/A]", "[Not Supported]", a duplicate index, no line at all) is an error rather
 * than a guess: a wrong number could restart a healthy container.
 */
export function parseNvidiaSmi(stdout: string): ParseResult {
  const lines = stdout
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (lines.length === 0) return { ok: false, error: "nvidia-smi printed no GPU lines" };

  const gpus: GpuMemory[] = [];
  for (const [n, line] of lines.entries()) {
    const fields = line.split(",").map((field) => field.trim());
    if (fields.length !== 3 || !fields.every((field) => INTEGER.test(field))) {
      return {
        ok: false,
        error: `unexpected nvidia-smi line ${n + 1}: ${JSON.stringify(line.slice(0, 200))} (want "index, used MiB, total MiB")`,
      };
    }
    const [index, usedMiB, totalMiB] = fields.map(Number) as [number, number, number];
    if (gpus.some((gpu) => gpu.index === index)) {
      return { ok: false, error: `nvidia-smi listed GPU ${index} twice` };
    }
    gpus.push({ index, usedMiB, totalMiB });
  }
  return { ok: true, gpus };
}
