/**
 * Reads an onnxruntime-genai model folder: genai_config.json says everything about the model
 * (file name, dimensions, I/O names, EOS ids, context length); nothing here is Phi-3-specific.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";

export const PULL_HINT = "run `npm run models:pull`";

/** A model folder that cannot be used; the message names the file and what to do. */
export class Phi3FolderError extends Error {
  constructor(
    message: string,
    readonly missingFile?: string,
  ) {
    super(message);
    this.name = "Phi3FolderError";
  }
}

const IdOrIds = z.union([z.number().int(), z.array(z.number().int()).min(1)]);

const GenaiConfig = z.object({
  model: z.object({
    bos_token_id: z.number().int().optional(),
    context_length: z.number().int().positive(),
    eos_token_id: IdOrIds,
    pad_token_id: z.number().int().optional(),
    type: z.string().optional(),
    vocab_size: z.number().int().positive(),
    decoder: z.object({
      filename: z.string().min(1),
      head_size: z.number().int().positive(),
      hidden_size: z.number().int().positive().optional(),
      num_attention_heads: z.number().int().positive().optional(),
      num_hidden_layers: z.number().int().positive(),
      num_key_value_heads: z.number().int().positive(),
      inputs: z
        .object({
          input_ids: z.string().default("input_ids"),
          attention_mask: z.string().default("attention_mask"),
          position_ids: z.string().optional(),
          past_key_names: z.string().default("past_key_values.%d.key"),
          past_value_names: z.string().default("past_key_values.%d.value"),
        })
        .default({
          input_ids: "input_ids",
          attention_mask: "attention_mask",
          past_key_names: "past_key_values.%d.key",
          past_value_names: "past_key_values.%d.value",
        }),
      outputs: z
        .object({
          logits: z.string().default("logits"),
          present_key_names: z.string().default("present.%d.key"),
          present_value_names: z.string().default("present.%d.value"),
        })
        .default({
          logits: "logits",
          present_key_names: "present.%d.key",
          present_value_names: "present.%d.value",
        }),
    }),
  }),
});

export interface Phi3ModelConfig {
  /** Absolute path of the .onnx file. */
  modelFile: string;
  modelType: string;
  numLayers: number;
  numKvHeads: number;
  headSize: number;
  contextLength: number;
  /** Size of the logits' last dimension (may exceed the tokenizer's vocabulary: padding). */
  vocabSize: number;
  eosIds: number[];
  names: {
    inputIds: string;
    attentionMask: string;
    /** Only when genai_config names one (most Phi-3 exports derive positions from the mask). */
    positionIds?: string;
    logits: string;
    pastKey: (layer: number) => string;
    pastValue: (layer: number) => string;
    presentKey: (layer: number) => string;
    presentValue: (layer: number) => string;
  };
}

export interface Phi3Folder {
  dir: string;
  config: Phi3ModelConfig;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
}

const layerName = (template: string) => (layer: number) => template.replace("%d", String(layer));

async function readJson(dir: string, file: string): Promise<Record<string, unknown>> {
  const path = join(dir, file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new Phi3FolderError(`Phi-3 model file not found: ${path} (${PULL_HINT})`, file);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new Phi3FolderError(`Phi-3 model file is not valid JSON: ${path} (${String(error)})`);
  }
}

async function requireFile(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) {
    throw new Phi3FolderError(`Phi-3 model file not found: ${path} (${PULL_HINT})`, path);
  }
  return path;
}

export function parseGenaiConfig(dir: string, raw: unknown): Phi3ModelConfig {
  const parsed = GenaiConfig.safeParse(raw);
  if (!parsed.success) {
    throw new Phi3FolderError(
      `genai_config.json in ${dir} is not an onnxruntime-genai decoder config: ${z.prettifyError(parsed.error)}`,
    );
  }
  const { model } = parsed.data;
  const { decoder } = model;
  return {
    modelFile: join(dir, decoder.filename),
    modelType: model.type ?? "decoder",
    numLayers: decoder.num_hidden_layers,
    numKvHeads: decoder.num_key_value_heads,
    headSize: decoder.head_size,
    contextLength: model.context_length,
    vocabSize: model.vocab_size,
    eosIds: Array.isArray(model.eos_token_id) ? model.eos_token_id : [model.eos_token_id],
    names: {
      inputIds: decoder.inputs.input_ids,
      attentionMask: decoder.inputs.attention_mask,
      ...(decoder.inputs.position_ids ? { positionIds: decoder.inputs.position_ids } : {}),
      logits: decoder.outputs.logits,
      pastKey: layerName(decoder.inputs.past_key_names),
      pastValue: layerName(decoder.inputs.past_value_names),
      presentKey: layerName(decoder.outputs.present_key_names),
      presentValue: layerName(decoder.outputs.present_value_names),
    },
  };
}

/** Reads and checks the folder; the ONNX file's external data is checked by ONNX Runtime. */
export async function readPhi3Folder(dir: string): Promise<Phi3Folder> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new Phi3FolderError(`Phi-3 model folder not found: ${dir} (${PULL_HINT})`, dir);
  }
  const config = parseGenaiConfig(dir, await readJson(dir, "genai_config.json"));
  await requireFile(config.modelFile);
  const [tokenizerJson, tokenizerConfig, specialTokensMap] = await Promise.all([
    readJson(dir, "tokenizer.json"),
    readJson(dir, "tokenizer_config.json"),
    readJson(dir, "special_tokens_map.json"),
  ]);
  return { dir, config, tokenizerJson, tokenizerConfig, specialTokensMap };
}
