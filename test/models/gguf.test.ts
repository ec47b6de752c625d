import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeGguf, gv } from "../../gpu-node/models/tiny/gguf-writer.ts";
import {
  CHATML_TEMPLATE,
  TINY_HERMES_SHAPE,
  tinyLlamaVocab,
  writeTinyHermes,
} from "../../gpu-node/models/tiny/hermes.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gguf-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("GGUF writer", () => {
  it("round-trips metadata of every kind and tensor infos through @huggingface/gguf's reader", async () => {
    const path = join(dir, "kinds.gguf");
    const buf = encodeGguf(
      [
        ["general.architecture", gv.str("llama")],
        ["a.u32", gv.u32(4_000_000_000)],
        ["a.i32", gv.i32(-7)],
        ["a.f32", gv.f32(0.5)],
        ["a.bool", gv.bool(true)],
        ["a.text", gv.str("héllo <|im_start|>")],
        ["a.strings", gv.arr("string", ["x", "", "ü"])],
        ["a.ints", gv.arr("i32", [1, -2, 3])],
      ],
      [
        { name: "t.a", dims: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        { name: "t.b", dims: [5], data: new Float32Array(5).fill(0.25) },
      ],
    );
    await writeFile(path, buf);
    const parsed = await gguf(path, { allowLocalFile: true });
    expect(parsed.metadata.version).toBe(3);
    expect(parsed.metadata.tensor_count).toBe(2n);
    const md = parsed.metadata as unknown as Record<string, unknown>;
    expect(md["a.u32"]).toBe(4_000_000_000);
    expect(md["a.i32"]).toBe(-7);
    expect(md["a.f32"]).toBe(0.5);
    expect(md["a.bool"]).toBe(true);
    expect(md["a.text"]).toBe("héllo <|im_start|>");
    expect(md["a.strings"]).toEqual(["x", "", "ü"]);
    expect(md["a.ints"]).toEqual([1, -2, 3]);
    expect(parsed.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype])).toEqual([
      ["t.a", [3, 2], 0],
      ["t.b", [5], 0],
    ]);
    // Tensor data starts at the aligned end of the header and holds the floats as given.
    const dataStart = parsed.tensorDataOffset;
    const b = parsed.tensorInfos[1];
    const at = Number(dataStart) + Number(b?.offset);
    expect(
      new Float32Array(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + 20)),
    ).toEqual(new Float32Array(5).fill(0.25));
    expect(Number(dataStart) % 32).toBe(0);
  });

  it("rejects tensor data that does not match its dimensions", () => {
    expect(() =>
      encodeGguf([], [{ name: "bad", dims: [2, 2], data: new Float32Array(3) }]),
    ).toThrow(/bad: dims 2x2 need 4 values, got 3/);
  });
});

describe("writeTinyHermes", () => {
  it("writes a llama model with every key llama.cpp needs, a byte-fallback vocab and ChatML", async () => {
    const path = join(dir, "tiny.gguf");
    await writeTinyHermes(path, { seed: 1 });
    const { metadata, tensorInfos } = await gguf(path, { allowLocalFile: true });
    const md = metadata as unknown as Record<string, unknown>;
    expect(md["general.architecture"]).toBe("llama");
    for (const key of [
      "llama.context_length",
      "llama.embedding_length",
      "llama.block_count",
      "llama.feed_forward_length",
      "llama.attention.head_count",
      "llama.attention.head_count_kv",
      "llama.attention.layer_norm_rms_epsilon",
    ]) {
      expect(md[key], key).toBeTypeOf("number");
    }
    expect(md["llama.block_count"]).toBe(TINY_HERMES_SHAPE.nLayers);
    expect(md["tokenizer.ggml.model"]).toBe("llama");
    const tokens = md["tokenizer.ggml.tokens"] as string[];
    expect(tokens).toEqual(tinyLlamaVocab().tokens);
    expect(tokens).toContain("<0x0A>");
    expect(tokens).toContain("<0xFF>");
    expect(tokens[md["tokenizer.ggml.eos_token_id"] as number]).toBe("<|im_end|>");
    expect(tokens).toContain("<|im_start|>");
    expect(md["tokenizer.chat_template"]).toBe(CHATML_TEMPLATE);
    // token_embd + output_norm + output + 9 per layer
    expect(tensorInfos).toHaveLength(3 + 9 * TINY_HERMES_SHAPE.nLayers);
  });

  it("is byte-identical for a seed and differs between seeds", async () => {
    await writeTinyHermes(join(dir, "s1a.gguf"), { seed: 7 });
    await writeTinyHermes(join(dir, "s1b.gguf"), { seed: 7 });
    await writeTinyHermes(join(dir, "s2.gguf"), { seed: 8 });
    const [a, b, c] = await Promise.all(
      ["s1a", "s1b", "s2"].map((n) => readFile(join(dir, `${n}.gguf`))),
    );
    expect(a?.equals(b as Buffer)).toBe(true);
    expect(a?.equals(c as Buffer)).toBe(false);
    expect(a?.length).toBe(c?.length);
  });
});
