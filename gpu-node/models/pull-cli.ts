/**
 * `npm run models:pull [-- --quant Q4_K_M --phi3-variant cuda|cpu|<folder> --only hermes|phi3 --models-dir DIR]`
 *
 * Downloads Hermes-3 (GGUF) and Phi-3-mini (ONNX) into MODELS_DIR, resuming partial downloads and
 * verifying checksums. Environment: MODELS_DIR, HERMES_QUANT, PHI3_VARIANT, HF_ENDPOINT, HF_TOKEN
 * (flags win over the environment; .env is read). An entry file: it parses the environment once,
 * with the schema below.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { parseEnv } from "../contract/env.ts";
import { loadEnvFile } from "../contract/env-file.ts";
import {
  checkHermesQuant,
  HF_DEFAULT_ENDPOINT,
  hasNvidiaGpu,
  resolvePhi3Variant,
} from "./catalog.ts";
import { type PullItem, pullModels } from "./pull.ts";
import { PullEnv } from "./pull-settings.ts";

const USAGE = `Usage: npm run models:pull -- [options]

  --models-dir DIR      where models go (MODELS_DIR, default ./models)
  --quant QUANT         Hermes-3 GGUF quantization (HERMES_QUANT, default Q4_K_M)
  --phi3-variant V      cuda | cpu | auto | a folder of microsoft/Phi-3-mini-4k-instruct-onnx
                        (PHI3_VARIANT, default auto: what the GPU node loads, i.e. cuda with
                        an NVIDIA driver or PHI3_DEVICE=cuda, cpu without one or with PHI3_DEVICE=cpu)
  --only hermes|phi3    fetch one model only
  -h, --help            this text

Environment: HF_ENDPOINT (default ${HF_DEFAULT_ENDPOINT}), HF_TOKEN (sent as a Bearer token).`;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function progressPrinter(): (e: {
  item: PullItem;
  phase: string;
  done: number;
  total: number;
}) => void {
  const tty = process.stderr.isTTY;
  let lastLine = "";
  let lastAt = 0;
  return ({ item, phase, done, total }) => {
    const now = Date.now();
    const finished = done >= total;
    // On a terminal redraw often; in logs print a line every 10 s and at the end of a file.
    if (!finished && now - lastAt < (tty ? 200 : 10_000)) return;
    lastAt = now;
    const pct = total > 0 ? ((100 * done) / total).toFixed(1) : "?";
    const line = `${phase === "verify" ? "verifying" : "downloading"} ${item.file.path}: ${pct}% (${mib(done)} / ${mib(total)})`;
    if (line === lastLine) return;
    lastLine = line;
    if (tty) process.stderr.write(`\r\x1b[2K${line}${finished ? "\n" : ""}`);
    else process.stderr.write(`${line}\n`);
  };
}

async function main(): Promise<number> {
  loadEnvFile();
  const env = parseEnv(PullEnv, process.env);
  const { values } = parseArgs({
    options: {
      "models-dir": { type: "string" },
      quant: { type: "string" },
      "phi3-variant": { type: "string" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.only !== undefined && values.only !== "hermes" && values.only !== "phi3") {
    throw new Error(`--only must be "hermes" or "phi3", got "${values.only}"`);
  }
  const modelsDir = resolve(values["models-dir"] ?? env.MODELS_DIR);
  const quant = checkHermesQuant(values.quant ?? env.HERMES_QUANT);
  const gpu = hasNvidiaGpu();
  // `auto`: the variant the GPU node will load (it reads PHI3_DEVICE from the same .env).
  const variant = resolvePhi3Variant(
    values["phi3-variant"] ?? env.PHI3_VARIANT,
    gpu,
    env.PHI3_DEVICE,
  );
  const endpoint = env.HF_ENDPOINT;
  const token = env.HF_TOKEN;
  const logger = pino({ level: env.LOG_LEVEL });

  const controller = new AbortController();
  process.once("SIGINT", () => {
    process.stderr.write("\ninterrupted: partial downloads are kept and resume on the next run\n");
    controller.abort(new Error("interrupted"));
  });

  logger.info(
    {
      modelsDir,
      hermesQuant: values.only === "phi3" ? undefined : quant,
      phi3Variant: values.only === "hermes" ? undefined : variant,
      nvidiaGpu: gpu,
      endpoint,
      token: token ? "set" : "unset",
    },
    "models:pull",
  );
  const results = await pullModels({
    modelsDir,
    hub: { endpoint, token },
    hermes: values.only === "phi3" ? false : { quant },
    phi3: values.only === "hermes" ? false : { variant },
    logger,
    signal: controller.signal,
    onProgress: progressPrinter(),
  });
  for (const r of results)
    process.stdout.write(
      `${r.status === "present" ? "present   " : "downloaded"} ${r.dest} (${mib(r.bytes)})\n`,
    );
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `models:pull failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
