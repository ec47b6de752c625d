import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkGgufFile, ModelFileError } from "../../gpu-node/hermes/check.ts";
import { encodeGguf, gv } from "../../gpu-node/models/tiny/gguf-writer.ts";
import {
  type GgufParts,
  tinyHermesGguf,
  tinyHermesParts,
} from "../../gpu-node/models/tiny/hermes.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hermes-check-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, data: Buffer | string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, data);
  return path;
}

function alter(change: (parts: GgufParts) => void): Buffer {
  const parts = tinyHermesParts({ seed: 3 });
  change(parts);
  return encodeGguf(parts.metadata, parts.tensors);
}
const without = (key: string) =>
  alter((p) => {
    p.metadata = p.metadata.filter(([k]) => k !== key);
  });
const withValue = (key: string, value: ReturnType<typeof gv.u32>) =>
  alter((p) => {
    p.metadata = p.metadata.map(([k, v]) => [k, k === key ? value : v] as const);
  });

async function rejection(path: string): Promise<ModelFileError> {
  const err = await checkGgufFile(path, { expectedArchitecture: "llama" }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFileError);
  return err as ModelFileError;
}

describe("checkGgufFile", () => {
  it("accepts the tiny Hermes model and reports its name and trained context", async () => {
    const path = await write("ok.gguf", tinyHermesGguf({ seed: 3 }));
    const checked = await checkGgufFile(path, { expectedArchitecture: "llama" });
    expect(checked).toMatchObject({
      architecture: "llama",
      name: "hermes-tiny",
      trainedContextLength: 131_072,
    });
  });

  it("names a missing file and says how to get the models", async () => {
    const err = await rejection(join(dir, "nope", "model.gguf"));
    expect(err.message).toContain(join(dir, "nope", "model.gguf"));
    expect(err.message).toContain("npm run models:pull");
  });

  it.each([
    "llama.feed_forward_length",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.embedding_length",
    "llama.block_count",
    "llama.context_length",
    "llama.attention.layer_norm_rms_epsilon",
  ])("rejects a model without %s", async (key) => {
    const err = await rejection(await write(`no-${key}.gguf`, without(key)));
    expect(err.message).toContain(`required key ${key} is missing`);
  });

  it("rejects a model without a tokenizer", async () => {
    const err = await rejection(await write("no-tok.gguf", without("tokenizer.ggml.model")));
    expect(err.message).toContain("tokenizer.ggml.model");
  });

  it("rejects zero heads, which would divide by zero inside llama.cpp", async () => {
    const err = await rejection(
      await write("zero.gguf", withValue("llama.attention.head_count", gv.u32(0))),
    );
    expect(err.message).toContain("llama.attention.head_count must be positive, got 0");
  });

  it("rejects a non-GGUF file", async () => {
    const err = await rejection(await write("text.gguf", "this is not a model\n".repeat(100)));
    expect(err.message).toMatch(/not a readable GGUF file/);
  });

  it("rejects an empty file", async () => {
    const err = await rejection(await write("empty.gguf", ""));
    expect(err.message).toMatch(/not a readable GGUF file/);
  });

  it("rejects a file truncated in its tensor data, with the byte counts", async () => {
    const full = tinyHermesGguf({ seed: 3 });
    const err = await rejection(await write("trunc.gguf", full.subarray(0, full.length - 1000)));
    expect(err.message).toContain("truncated");
    expect(err.message).toContain(`the file has ${full.length - 1000}`);
  });

  it("rejects a file truncated inside its metadata", async () => {
    const full = tinyHermesGguf({ seed: 3 });
    const err = await rejection(await write("trunc-md.gguf", full.subarray(0, 2000)));
    expect(err.message).toMatch(/not a readable GGUF file|truncated/);
  });

  it("rejects another architecture", async () => {
    const path = await write(
      "arch.gguf",
      withValue("general.architecture", gv.str("phi3") as ReturnType<typeof gv.u32>),
    );
    const err = await rejection(path);
    expect(err.message).toContain('architecture is "phi3", expected "llama"');
  });
});

describe("loading a broken model in a real process", () => {
  it("ends with an error message, not a crash, for a file llama.cpp would abort on", async () => {
    const path = await write("child-no-ff.gguf", without("llama.feed_forward_length"));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "fixtures", "load-child.ts"), path],
      { timeout: 60_000 },
    );
    const result = JSON.parse(stdout) as { ok: boolean; message?: string };
    expect(result.ok).toBe(false);
    expect(result.message).toContain("llama.feed_forward_length is missing");
  });

  it("loads the intact file in the same harness", async () => {
    const path = await write("child-ok.gguf", tinyHermesGguf({ seed: 3 }));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "fixtures", "load-child.ts"), path],
      { timeout: 60_000 },
    );
    expect(JSON.parse(stdout)).toEqual({ ok: true });
  });
});
