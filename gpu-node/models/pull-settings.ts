/** The settings of `npm run models:pull` (gpu-node/models/pull-cli.ts): one zod schema. */
import { z } from "zod";
import { LogLevel } from "../contract/env.ts";
import { HF_DEFAULT_ENDPOINT } from "./catalog.ts";

/** The variables of this command; empty ones count as unset, flags win over them. */
export const PullEnv = z.object({
  MODELS_DIR: z.string().default("./models"),
  HERMES_QUANT: z.string().optional(),
  PHI3_VARIANT: z.string().optional(),
  /** The GPU node's Phi-3 device: `auto` pulls the variant that device will load. */
  PHI3_DEVICE: z.string().optional(),
  HF_ENDPOINT: z.url({ protocol: /^https?$/ }).default(HF_DEFAULT_ENDPOINT),
  HF_TOKEN: z.string().optional(),
  LOG_LEVEL: LogLevel.default("info"),
});
