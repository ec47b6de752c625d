/**
 * Continuous batching on the tiny model (GroupQueryAttention, MatMulNBits; real
 * onnxruntime-node): concurrent requests share decode steps, join and leave between steps, and
 * each one's output is what it would have been alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceError } from "../../gpu-node/contract/errors.ts";
import { TradeProposal } from "../../gpu-node/contract/index.ts";
import {
  BudgetPlanner,
  ByteNfa,
  buildVocabulary,
  createTokenizerInfo,
  loadPhi3,
  loadXGrammar,
  type Phi3OnnxRuntime,
  readPhi3Folder,
} from "../../gpu-node/phi3/index.ts";
import type { Phi3GenerateInput } from "../../gpu-node/runtime.ts";
import { toEbnf } from "../../gpu-node/structured/ebnf.ts";
import { alt, lit, seq } from "../../gpu-node/structured/language.ts";
import { makeTinyFolder, type TinyFolder, tradeSchemaValidator } from "./helpers.ts";

const never = () => ({ signal: new AbortController().signal });
const PROMPTS = [
  "Propose a stop adjustment for AAPL after a 3% gap down.",
  "MSFT beat earnings; should I raise the target on my long?",
  "Abort?",
  "The market is risky and the stock price is falling to the stop; adjust the trade and the target.",
  "NVDA fell 6% on earnings. Adjust my long?",
  "pass",
];

describe("Phi-3 continuous batching", () => {
  let folder: TinyFolder;
  let runtime: Phi3OnnxRuntime;
  const validate = tradeSchemaValidator();

  beforeAll(async () => {
    folder = await makeTinyFolder(21);
    runtime = await loadPhi3({ modelDir: folder.dir, device: "cpu", threads: 1, parallel: 4 }, {});
  });
  afterAll(async () => {
    await runtime?.dispose();
    await folder?.remove();
  });

  const inputs = (sampling?: Phi3GenerateInput["sampling"]): Phi3GenerateInput[] =>
    PROMPTS.map((prompt, i) => ({
      prompt,
      // Different budgets, so that sequences leave at different steps.
      maxTokens: 30 + 11 * i,
      ...(sampling ? { sampling: { ...sampling, seed: 100 + i } } : {}),
    }));

  it.each([
    ["greedy", undefined],
    ["sampled (T=0.9, top-k 50, top-p 0.95, seeded)", { temperature: 0.9, top_k: 50, top_p: 0.95 }],
  ] as const)(
    "%s: each batched output is token for token what it is alone",
    async (_, sampling) => {
      const all = inputs(sampling);
      const alone = [];
      for (const input of all) alone.push(await runtime.generateRaw(input, never()));
      const before = runtime.stats;
      // Six requests on four rows: two wait for a row and join as others leave.
      const batched = await Promise.all(all.map((input) => runtime.generateRaw(input, never())));
      const after = runtime.stats;
      for (const [i, result] of batched.entries()) {
        expect(result.tokens, PROMPTS[i]).toEqual(alone[i]?.tokens);
        expect(result.raw).toBe(alone[i]?.raw);
        expect(validate(JSON.parse(result.raw))).toBe(true);
      }
      // One ONNX run per step for all rows: far fewer runs than tokens, several rows per run.
      const tokens = batched.reduce((n, r) => n + r.usage.completion_tokens, 0);
      const steps = after.steps - before.steps;
      expect(after.prefills - before.prefills).toBe(all.length);
      expect(steps).toBeLessThan(tokens * 0.6);
      expect((after.stepRows - before.stepRows) / steps).toBeGreaterThan(1.5);
    },
  );

  it("cancelling one of four stops only its sequence; the other three finish as they would alone", async () => {
    const four = inputs({ temperature: 1 })
      .slice(0, 4)
      .map((input) => ({ ...input, maxTokens: 300 }));
    const alone = [];
    for (const [i, input] of four.entries()) {
      if (i !== 1) alone[i] = await runtime.generateRaw(input, never());
    }
    const controller = new AbortController();
    const reason = new ServiceError("request_aborted", "client went away");
    let pieces = 0;
    const running = four.map((input, i) =>
      runtime.generateRaw(
        input,
        i === 1
          ? {
              signal: controller.signal,
              // Cancel once it has streamed a little: it is running in the batch by then.
              onText: () => {
                if (++pieces === 5) controller.abort(reason);
              },
            }
          : never(),
      ),
    );
    const settled = await Promise.allSettled(running);
    expect(settled[1]).toEqual({ status: "rejected", reason });
    for (const i of [0, 2, 3]) {
      const outcome = settled[i];
      expect(outcome?.status).toBe("fulfilled");
      if (outcome?.status === "fulfilled") expect(outcome.value.tokens).toEqual(alone[i]?.tokens);
    }
    // The cancelled sequence stopped within one step of its abort.
    expect(pieces).toBeLessThanOrEqual(6);
  });

  it("streams each piece of text as produced; the pieces are the result's text", async () => {
    const pieces: string[] = [];
    let resolved = false;
    const pending = runtime
      .generate(
        { prompt: PROMPTS[0] as string, maxTokens: 60, sampling: { temperature: 1, seed: 3 } },
        {
          signal: new AbortController().signal,
          onText: (piece) => {
            expect(resolved).toBe(false);
            pieces.push(piece);
          },
        },
      )
      .then((r) => {
        resolved = true;
        return r;
      });
    const result = await pending;
    expect(pieces.length).toBeGreaterThan(3);
    expect(pieces.join("")).toBe(result.raw);
    expect(pieces.every((p) => p.length > 0)).toBe(true);
    expect(TradeProposal.parse(JSON.parse(pieces.join("")))).toEqual(result.proposal);
  });

  it("a request's own constraint is used and its raw text returned unparsed; generate refuses one", async () => {
    const { config, tokenizerJson } = await readPhi3Folder(folder.dir);
    const xgrammar = await loadXGrammar();
    const vocabulary = buildVocabulary(tokenizerJson, config.vocabSize);
    const info = await createTokenizerInfo(xgrammar, vocabulary, config);
    const compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(info);
    // Another language than the trade schema's: an answer of one of three words.
    const lang = seq(lit('{"answer": "'), alt(lit("yes"), lit("no"), lit("later")), lit('"}'));
    const grammar = await compiler.compileGrammar(toEbnf(lang));
    compiler.dispose();
    const nfa = new ByteNfa(lang);
    const constraint = { grammar, nfa, planner: new BudgetPlanner(nfa, vocabulary) };
    try {
      const answers = await Promise.all(
        [1, 2, 3, 4, 5, 6].map((seed) =>
          runtime.generateRaw(
            { prompt: "Answer.", maxTokens: 30, constraint, sampling: { temperature: 1.5, seed } },
            never(),
          ),
        ),
      );
      for (const a of answers) expect(a.raw).toMatch(/^\{"answer": "(yes|no|later)"\}$/);
      // Batched beside a trade proposal, each keeps its own language.
      const [mine, trade] = await Promise.all([
        runtime.generateRaw({ prompt: "Answer.", maxTokens: 30, constraint }, never()),
        runtime.generateRaw({ prompt: "Answer.", maxTokens: 40 }, never()),
      ]);
      expect(mine?.raw).toMatch(/^\{"answer": /);
      expect(validate(JSON.parse(trade?.raw as string))).toBe(true);
      await expect(
        runtime.generate({ prompt: "x", maxTokens: 40, constraint }, never()),
      ).rejects.toThrow(/generateRaw/);
      // Its own minimum budget.
      await expect(
        runtime.generateRaw({ prompt: "x", maxTokens: 2, constraint }, never()),
      ).rejects.toMatchObject({ code: "budget_too_small" });
    } finally {
      grammar.dispose();
      info.dispose();
    }
  });
});

describe("Phi-3 batch within PHI3_KV_TOKENS", () => {
  it("admits a newcomer only while rows x the longest prompt + max_length fits; longer alone is prompt_too_long", async () => {
    const folder = await makeTinyFolder(23);
    // Room for two rows of up to 200 positions, not three.
    const runtime = await loadPhi3(
      { modelDir: folder.dir, device: "cpu", threads: 1, parallel: 4, kvTokens: 400 },
      {},
    );
    try {
      const prompt = PROMPTS[0] as string;
      const promptTokens = (await runtime.generateRaw({ prompt, maxTokens: 30 }, never())).usage
        .prompt_tokens;
      const maxTokens = 200 - promptTokens;
      const alone = await runtime.generateRaw({ prompt, maxTokens }, never());
      const results = await Promise.all(
        [0, 1, 2, 3].map(() => runtime.generateRaw({ prompt, maxTokens }, never())),
      );
      // Batched or not, the same greedy output; never more than two rows in one step.
      for (const r of results) expect(r.tokens).toEqual(alone.tokens);
      expect(runtime.stats.maxRows).toBe(2);
      await expect(
        runtime.generateRaw({ prompt, maxTokens: 401 - promptTokens }, never()),
      ).rejects.toMatchObject({ code: "prompt_too_long" });
    } finally {
      await runtime.dispose();
      await folder.remove();
    }
  });
});

describe("Phi-3 runtime lifecycle", () => {
  let folder: TinyFolder;
  beforeAll(async () => {
    folder = await makeTinyFolder(22);
  });
  afterAll(() => folder.remove());

  it("dispose is idempotent, waits for work in flight, and later calls are model_not_loaded", async () => {
    const runtime = await loadPhi3({ modelDir: folder.dir, device: "cpu", threads: 1 }, {});
    expect(runtime.parallel).toBe(4);
    expect(runtime.disposed).toBe(false);
    const running = runtime.generate(
      { prompt: PROMPTS[0] as string, maxTokens: 200, sampling: { temperature: 1, seed: 9 } },
      never(),
    );
    const first = runtime.dispose();
    const second = runtime[Symbol.asyncDispose]();
    expect(runtime.disposed).toBe(true);
    await Promise.all([first, second]);
    expect(tradeSchemaValidator()((await running).proposal)).toBe(true);
    const late = await runtime
      .generate({ prompt: "x", maxTokens: 40 }, never())
      .catch((e: unknown) => e);
    expect(late).toBeInstanceOf(ServiceError);
    expect(late).toMatchObject({ code: "model_not_loaded", status: 503 });
    await runtime.dispose();
  });

  it("a load that fails after the grammar compiled frees the grammar and the tokenizer info", async () => {
    const xgrammar = await loadXGrammar();
    const freed: string[] = [];
    const spy = (proto: { dispose(): void }, name: string) => {
      const original = proto.dispose;
      proto.dispose = function (this: { dispose(): void }) {
        freed.push(name);
        original.call(this);
      };
      return () => {
        proto.dispose = original;
      };
    };
    const restore = [
      spy(xgrammar.CompiledGrammar.prototype, "grammar"),
      spy(xgrammar.TokenizerInfo.prototype, "tokenizer info"),
    ];
    try {
      const controller = new AbortController();
      const load = loadPhi3(
        { modelDir: folder.dir, device: "cpu", threads: 1 },
        {
          signal: controller.signal,
          // Checked at the next phase ("ready"), i.e. after the grammar compiled.
          onProgress: ({ phase }) => {
            if (phase === "grammar compile") controller.abort(new Error("shutdown"));
          },
        },
      );
      await expect(load).rejects.toThrow("shutdown");
      expect(freed.sort()).toEqual(["grammar", "tokenizer info"]);
    } finally {
      for (const r of restore) r();
    }
  });
});
