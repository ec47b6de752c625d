import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PHI3_CHAT_TEMPLATE } from "../../gpu-node/models/tiny/phi3.ts";
import { type Phi3Folder, readPhi3Folder } from "../../gpu-node/phi3/folder.ts";
import {
  buildVocabulary,
  createChatFormatter,
  createPromptTokenizer,
  tokenBytes,
} from "../../gpu-node/phi3/vocab.ts";
import { makeTinyFolder, type TinyFolder } from "./helpers.ts";

describe("chat formatting and tokenization", () => {
  let folder: TinyFolder;
  let phi3: Phi3Folder;
  beforeAll(async () => {
    folder = await makeTinyFolder();
    phi3 = await readPhi3Folder(folder.dir);
  });
  afterAll(() => folder.remove());

  it("renders Phi-3's template from tokenizer_config.json", () => {
    const chat = createChatFormatter(phi3.tokenizerConfig);
    expect(chat.format("Adjust AAPL?")).toBe("<|user|>\nAdjust AAPL?<|end|>\n<|assistant|>\n");
    expect(chat.format('a "quoted"\nprompt {{ x }}')).toBe(
      '<|user|>\na "quoted"\nprompt {{ x }}<|end|>\n<|assistant|>\n',
    );
  });

  it("uses whatever template the folder has (nothing Phi-3-specific is hard-coded)", () => {
    const chat = createChatFormatter({
      chat_template: "{{ bos_token }}[{{ messages[0]['content'] }}]",
      bos_token: "<s>",
    });
    expect(chat.format("hi")).toBe("<s>[hi]");
    expect(() => createChatFormatter({})).toThrow(/chat_template/);
  });

  it("tokenizes like the real Phi-3: BOS once, the newline kept after <|user|> and <|end|>, dropped after <|assistant|>", () => {
    const tokenizer = createPromptTokenizer(phi3.tokenizerJson, phi3.tokenizerConfig);
    const vocab = buildVocabulary(phi3.tokenizerJson, phi3.config.vocabSize);
    const ids = tokenizer.encode(createChatFormatter(phi3.tokenizerConfig).format("Hi"));
    const tokens = ids.map((id) => vocab.tokens[id]);
    // The real tokenizer gives [1, 32010, 29871, 13, ..., 32007, 29871, 13, 32001] here:
    // <|user|> and <|end|> have no rstrip, <|assistant|> has.
    expect(tokens).toEqual([
      "<s>",
      "<|user|>",
      "▁",
      "<0x0A>",
      "H",
      "i",
      "<|end|>",
      "▁",
      "<0x0A>",
      "<|assistant|>",
    ]);
    // Byte fallback: characters outside the vocabulary round-trip through <0xXX> tokens.
    const text = "AAPL é📈 stop";
    const round = tokenizer.encode(text);
    expect(round.map((id) => vocab.tokens[id])).toContain("<0xF0>");
    expect(tokenizer.decode(round.slice(1))).toBe(text);
  });

  it("knows each token's bytes as xgrammar decodes them, and which ids are control tokens", () => {
    const vocab = buildVocabulary(phi3.tokenizerJson, phi3.config.vocabSize);
    expect(Array.from(tokenBytes("<0x0A>"))).toEqual([10]);
    expect(new TextDecoder().decode(tokenBytes("▁the"))).toBe(" the");
    const end = vocab.tokens.indexOf("<|end|>");
    expect(vocab.specialIds.has(end)).toBe(true);
    expect(vocab.bytes[end]).toBeUndefined();
    expect(vocab.tokens).toHaveLength(phi3.config.vocabSize);
    expect(vocab.tokens.at(-1)).toBe(""); // padding past the tokenizer
    expect(vocab.prependSpace).toBe(true);
    expect(phi3.tokenizerConfig.chat_template).toBe(PHI3_CHAT_TEMPLATE);
  });
});
