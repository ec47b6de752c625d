/**
 * Writes a tiny, randomly weighted, Phi-3-shaped model folder laid out like onnxruntime-genai's
 * export (genai_config.json, model.onnx + model.onnx.data, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json), so the Phi-3 runtime can be tested without downloading anything.
 * The graph (GroupQueryAttention, MatMulNBits) is in phi3-graph.ts, the tokenizer in
 * tokenizer.ts. Deterministic: the same seed gives byte-identical files.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { mulberry32 } from "../../phi3/sampler.ts";
import { GraphBuilder } from "./onnx-graph.ts";
import { buildTinyPhi3Graph, TINY_PHI3_SHAPE } from "./phi3-graph.ts";
import { buildTinyTokenizer, PHI3_CHAT_TEMPLATE } from "./tokenizer.ts";

export { TINY_PHI3_SHAPE } from "./phi3-graph.ts";
export { PHI3_CHAT_TEMPLATE } from "./tokenizer.ts";

const MODEL_FILE = "model.onnx";
const DATA_FILE = "model.onnx.data";

/** Writes the tiny model folder into `dir` (created if missing). */
export async function writeTinyPhi3(dir: string, opts: { seed: number }): Promise<void> {
  const tokenizer = buildTinyTokenizer();
  // The real export pads the logits past the tokenizer (32,064 vs 32,011): do the same.
  const vocabSize = Math.ceil(tokenizer.size / 64) * 64;
  const g = new GraphBuilder(DATA_FILE);
  const { inputs, outputs } = buildTinyPhi3Graph(g, mulberry32(opts.seed), vocabSize);
  const model = g.encode({
    name: "tiny_phi3",
    producer: "llm-sidecar tiny-phi3",
    inputs,
    outputs,
    opsets: [
      { domain: "", version: 14 },
      { domain: "com.microsoft", version: 1 },
    ],
  });

  const id = (t: string): number => {
    const v = tokenizer.ids[t];
    if (v === undefined) throw new Error(`tiny tokenizer lacks ${t}`);
    return v;
  };
  const { layers, hidden, heads, kvHeads, headSize, contextLength } = TINY_PHI3_SHAPE;
  const genaiConfig = {
    model: {
      bos_token_id: id("<s>"),
      context_length: contextLength,
      decoder: {
        session_options: { log_id: "onnxruntime-genai", provider_options: [] },
        filename: MODEL_FILE,
        head_size: headSize,
        hidden_size: hidden,
        inputs: {
          input_ids: "input_ids",
          attention_mask: "attention_mask",
          past_key_names: "past_key_values.%d.key",
          past_value_names: "past_key_values.%d.value",
        },
        outputs: {
          logits: "logits",
          present_key_names: "present.%d.key",
          present_value_names: "present.%d.value",
        },
        num_attention_heads: heads,
        num_hidden_layers: layers,
        num_key_value_heads: kvHeads,
      },
      eos_token_id: [id("<|end|>"), id("<|assistant|>"), id("<|endoftext|>")],
      pad_token_id: id("<|endoftext|>"),
      type: "phi3",
      vocab_size: vocabSize,
    },
    search: {
      diversity_penalty: 0,
      do_sample: false,
      early_stopping: true,
      length_penalty: 1,
      max_length: contextLength,
      min_length: 0,
      no_repeat_ngram_size: 0,
      num_beams: 1,
      num_return_sequences: 1,
      past_present_share_buffer: false,
      repetition_penalty: 1,
      temperature: 1,
      top_k: 1,
      top_p: 1,
    },
  };
  const special = (content: string) => ({
    content,
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
  });
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: "<s>",
    chat_template: PHI3_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: "<|endoftext|>",
    legacy: false,
    model_max_length: contextLength,
    pad_token: "<|endoftext|>",
    padding_side: "left",
    sp_model_kwargs: {},
    tokenizer_class: "LlamaTokenizer",
    unk_token: "<unk>",
    use_default_system_prompt: false,
  };
  const specialTokensMap = {
    bos_token: special("<s>"),
    eos_token: special("<|endoftext|>"),
    pad_token: special("<|endoftext|>"),
    unk_token: special("<unk>"),
  };

  await mkdir(dir, { recursive: true });
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  await writeFile(join(dir, MODEL_FILE), model);
  await writeFile(join(dir, DATA_FILE), g.externalData());
  await writeFile(join(dir, "genai_config.json"), json(genaiConfig));
  await writeFile(join(dir, "tokenizer.json"), json(tokenizer.json));
  await writeFile(join(dir, "tokenizer_config.json"), json(tokenizerConfig));
  await writeFile(join(dir, "special_tokens_map.json"), json(specialTokensMap));
}
