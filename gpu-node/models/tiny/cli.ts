/**
 * `npm run models:tiny -- --out DIR [--seed N]`
 *
 * Writes tiny random-weight models in the real formats, for tests and for trying the service
 * without the real weights: DIR/hermes-tiny.gguf (llama GGUF, ChatML) and DIR/phi3-tiny/
 * (an onnxruntime-genai style Phi-3 folder).
 */
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeTinyHermes } from "./hermes.ts";
import { writeTinyPhi3 } from "./phi3.ts";

export const TINY_HERMES_FILE = "hermes-tiny.gguf";
export const TINY_PHI3_DIR = "phi3-tiny";

/** Writes both tiny models into `outDir`; returns what it wrote. */
export async function writeTinyModels(
  outDir: string,
  seed: number,
): Promise<{ hermes: string; phi3: string }> {
  const hermes = join(outDir, TINY_HERMES_FILE);
  const phi3 = join(outDir, TINY_PHI3_DIR);
  await writeTinyHermes(hermes, { seed });
  await writeTinyPhi3(phi3, { seed });
  return { hermes, phi3 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help || !values.out) {
    process.stdout.write("Usage: npm run models:tiny -- --out DIR [--seed N]\n");
    if (!values.out && !values.help) process.exitCode = 2;
    return;
  }
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 32 - 1) {
    throw new Error(`--seed must be an integer from 0 to 4294967295, got "${values.seed}"`);
  }
  const out = resolve(values.out);
  const { hermes, phi3 } = await writeTinyModels(out, seed);
  process.stdout.write(`wrote ${hermes} (${(await stat(hermes)).size} bytes)\n`);
  for (const f of (await readdir(phi3)).sort()) {
    process.stdout.write(`wrote ${join(phi3, f)} (${(await stat(join(phi3, f))).size} bytes)\n`);
  }
  process.stdout.write(
    `\nUse them with the GPU node:\n  HERMES_MODEL_PATH=${hermes} PHI3_MODEL_DIR=${phi3} npm run start:gpu-node\n`,
  );
}

// Run only as a command, so tests can import writeTinyModels.
if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `models:tiny failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  });
}
