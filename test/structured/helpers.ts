/**
 * Shared pieces of the structured-output tests: both tiny models (the real runtimes, CPU, one
 * thread), a validator that is ajv (never our code), and the minimum budget as the runtimes
 * report it (the 422's min_max_length).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { Llama } from "node-llama-cpp";
import { ServiceError } from "../../gpu-node/contract/errors.ts";
import { getLlamaForDevice, loadHermes } from "../../gpu-node/hermes/index.ts";
import { writeTinyHermes } from "../../gpu-node/models/tiny/hermes.ts";
import { writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";
import { loadPhi3 } from "../../gpu-node/phi3/index.ts";
import type { HermesRuntime, JsonGenerateInput, Phi3Runtime } from "../../gpu-node/runtime.ts";

export interface TinyModels {
  hermes: HermesRuntime;
  phi3: Phi3Runtime;
  dispose(): Promise<void>;
}

export async function loadTinyModels(seed = 5): Promise<TinyModels> {
  const root = await mkdtemp(join(tmpdir(), "structured-"));
  await writeTinyHermes(join(root, "hermes-tiny.gguf"), { seed });
  await writeTinyPhi3(join(root, "phi3"), { seed });
  const llama: Llama = await getLlamaForDevice("cpu", { threads: 1 });
  const hermes = await loadHermes(
    {
      modelPath: join(root, "hermes-tiny.gguf"),
      contextSize: 1024,
      gpu: "cpu",
      parallel: 1,
      threads: 1,
    },
    {},
    { llama },
  );
  const phi3 = await loadPhi3({ modelDir: join(root, "phi3"), device: "cpu", threads: 1 }, {});
  return {
    hermes,
    phi3,
    async dispose() {
      await hermes.dispose();
      await phi3.dispose();
      await llama.dispose();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** An independent check of a schema: ajv (2020-12), not our grammar. */
export function validatorFor(schema: object): (value: unknown) => boolean {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validate = ajv.compile(structuredClone(schema));
  return (value) => validate(value) === true;
}

const never = new AbortController().signal;

/** The smallest max_tokens the runtime accepts for the schema, from its 422. */
export async function minimumBudget(
  runtime: HermesRuntime | Phi3Runtime,
  schema: Record<string, unknown>,
): Promise<number> {
  try {
    await json(runtime, { prompt: "x", schema, maxTokens: 1 });
  } catch (error) {
    if (error instanceof ServiceError && error.code === "budget_too_small") {
      return error.details.min_max_length as number;
    }
    throw error;
  }
  return 1;
}

export function json(runtime: HermesRuntime | Phi3Runtime, input: JsonGenerateInput) {
  if (!runtime.generateJson) throw new Error("runtime without generateJson");
  return runtime.generateJson(input, { signal: never });
}
