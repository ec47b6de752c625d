/**
 * 6. Structured output for any schema (gpu-node/structured/): what a schema costs to compile and
 * what its constraint costs per token, for three schemas of growing size (test/structured/
 * schemas.ts: an order ticket, a calendar event, a nested portfolio), at Phi-3's real
 * vocabulary size (32,064 logits, the synthetic byte-fallback vocabulary of bench/constrained.ts).
 *
 * (a) Compile, per schema: the subset check + language + EBNF + byte automaton (model
 *     independent, cached by schema hash), xgrammar's grammar compile on the vocabulary, and the
 *     planner's first plan (the minimum budget). Measured on a fresh compiler each run.
 * (b) Per token, in one loop on the same logits: the unconstrained step (plain sampling) against
 *     the constrained one as Phi-3's engine runs it (plan lookup, xgrammar bitmask, masked
 *     sampling with the automaton and plan check on the drawn token, the matcher's accept), plus
 *     what Hermes adds on top: turning the bitmask into node-llama-cpp's TokenBias (maskBias).
 *     Random logits (seeded): a random model's walk, long strings and planned closes.
 */

import { maskBias, textTokenWords } from "../gpu-node/hermes/token-bias.ts";
import type { Phi3ModelConfig } from "../gpu-node/phi3/folder.ts";
import {
  buildVocabulary,
  createTokenizerInfo,
  loadXGrammar,
  mulberry32,
  TokenSampler,
} from "../gpu-node/phi3/index.ts";
import { ConstraintCache, SchemaCompiler } from "../gpu-node/structured/index.ts";
import { CALENDAR_EVENT, ORDER_TICKET, PORTFOLIO } from "../test/structured/schemas.ts";
import { syntheticPhi3Tokenizer } from "./constrained.ts";
import { round, seededRandom, summarize } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult } from "./lib/types.ts";

const LOGITS = 32_064;
const TOKENIZER_SIZE = 32_011;
const SCHEMAS = [
  ["order ticket (6 keys)", ORDER_TICKET],
  ["calendar event (6 keys, bounded strings and array)", CALENDAR_EVENT],
  ["nested portfolio ($defs, arrays of objects of arrays)", PORTFOLIO],
] as const;

/** A fake tokenizer for TokenBias (it only asks whether a token ends generation). */
const fakeTokenizer = Object.assign(() => [], { isEogToken: () => false }) as unknown as Parameters<
  typeof maskBias
>[0];

async function measure(opts: BenchOptions) {
  const xgrammar = await loadXGrammar();
  const vocabulary = buildVocabulary(syntheticPhi3Tokenizer(), LOGITS);
  const config = { vocabSize: LOGITS, eosIds: [32_000, 32_007] } as unknown as Phi3ModelConfig;
  const info = await createTokenizerInfo(xgrammar, vocabulary, config);
  const textWords = textTokenWords(vocabulary.bytes);
  const rnd = seededRandom(11);
  const pool = Array.from({ length: 16 }, () => {
    const a = new Float32Array(LOGITS);
    for (let i = 0; i < LOGITS; i++) a[i] = (rnd() + rnd() + rnd() - 1.5) * 4;
    return a;
  });
  const generations = opts.quick ? 1 : 6;
  const budget = opts.quick ? 80 : 256;
  const compileRuns = opts.quick ? 1 : 5;
  const rows = [];
  for (const [name, schema] of SCHEMAS) {
    // (a) compile, fresh caches each run.
    const languageMs: number[] = [];
    const grammarMs: number[] = [];
    const plannerMs: number[] = [];
    let ebnfBytes = 0;
    let states = 0;
    let minTokens = 0;
    for (let r = 0; r < compileRuns; r++) {
      const schemas = new SchemaCompiler();
      const t0 = performance.now();
      const compiled = schemas.compile(schema);
      const t1 = performance.now();
      const compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(info);
      const t1b = performance.now();
      const grammar = await compiler.compileGrammar(compiled.ebnf);
      const t2 = performance.now();
      grammar.dispose();
      compiler.dispose();
      const cache = new ConstraintCache({ xgrammar, tokenizerInfo: info, vocabulary, schemas });
      const t3 = performance.now();
      const lease = await cache.lease(schema);
      const t4 = performance.now();
      minTokens = lease.constraint.minTokens;
      lease.release();
      await cache.dispose();
      languageMs.push(t1 - t0);
      grammarMs.push(t2 - t1b);
      // The lease compiles the grammar again and builds the planner: subtract the grammar.
      plannerMs.push(Math.max(0, t4 - t3 - (t2 - t1)));
      ebnfBytes = compiled.ebnf.length;
      states = compiled.nfa.stateCount;
    }
    // (b) per token.
    const cache = new ConstraintCache({ xgrammar, tokenizerInfo: info, vocabulary });
    const lease = await cache.lease(schema);
    const { grammar, nfa, planner } = lease.constraint;
    const params = { temperature: 0, topK: 0, topP: 1 };
    const sampler = new TokenSampler(LOGITS);
    const times = {
      unconstrained: [] as number[],
      constrained: [] as number[],
      mask: [] as number[],
      bias: [] as number[],
    };
    let tokens = 0;
    for (let g = 0; g < generations + 1; g++) {
      const warm = g === 0;
      const random = mulberry32(1000 + g);
      const matcher = await xgrammar.GrammarMatcher.createGrammarMatcher(grammar);
      let state = nfa.initial();
      let produced = 0;
      try {
        for (let step = 0; ; step++) {
          const logits = pool[(g * 7 + step) % pool.length] as Float32Array;
          const u0 = performance.now();
          sampler.prepare(logits, TOKENIZER_SIZE, undefined, params, random);
          sampler.next();
          const u1 = performance.now();
          const remaining = budget - produced;
          if (nfa.isFinal(state)) break;
          const c1 = performance.now();
          const cost = planner.cost(state);
          let chosen: { id: number; next: readonly number[] } | undefined;
          let maskMs = 0;
          let biasMs = 0;
          if (cost < remaining) {
            const m0 = performance.now();
            const mask = await matcher.getNextTokenBitmask();
            maskMs = performance.now() - m0;
            sampler.prepare(logits, TOKENIZER_SIZE, mask, params, random);
            for (let tries = 0; tries < 16 && !chosen; tries++) {
              const id = sampler.next();
              if (id === undefined) break;
              const bytes = vocabulary.bytes[id];
              const next = bytes && nfa.advance(state, bytes);
              if (next && planner.cost(next) <= remaining - 1) chosen = { id, next };
            }
            const b0 = performance.now();
            maskBias(fakeTokenizer, LOGITS, mask, textWords, new Set(), new Set());
            biasMs = performance.now() - b0;
          }
          if (!chosen) {
            for (const id of planner.plan(state).tokens) matcher.acceptToken(id);
            break;
          }
          matcher.acceptToken(chosen.id);
          state = chosen.next;
          produced++;
          const c2 = performance.now();
          if (!warm) {
            times.unconstrained.push((u1 - u0) * 1000);
            times.constrained.push((c2 - c1 - biasMs) * 1000);
            times.mask.push(maskMs * 1000);
            times.bias.push(biasMs * 1000);
            tokens++;
          }
        }
      } finally {
        matcher.dispose();
      }
    }
    lease.release();
    await cache.dispose();
    opts.logger.info({ schema: name, tokens }, "structured: per-token steps measured");
    rows.push({
      name,
      ebnf_bytes: ebnfBytes,
      nfa_states: states,
      min_tokens: minTokens,
      language_ms: summarize(languageMs),
      grammar_ms: summarize(grammarMs),
      planner_ms: summarize(plannerMs),
      tokens,
      unconstrained_us: summarize(times.unconstrained),
      constrained_us: summarize(times.constrained),
      mask_us: summarize(times.mask),
      bias_us: summarize(times.bias),
    });
  }
  info.dispose();
  return { rows, generations, budget, compileRuns };
}

export const structuredOutput: Benchmark = {
  id: "structured-output",
  title: "Structured output for any schema: compile time and per-token cost",
  async run(opts: BenchOptions): Promise<BenchResult> {
    const { rows, generations, budget, compileRuns } = await measure(opts);
    const share = (us: number, stepMs: number) => `${round((us / 1000 / stepMs) * 100)} %`;
    return {
      id: "structured-output",
      title: this.title,
      command: "npm run bench -- --only structured-output",
      target: "< 5 % of a real model step per token (constrained vs unconstrained)",
      tables: [
        {
          title: `(a) Compile per schema at 32,064 tokens (ms, median of ${compileRuns})`,
          columns: [
            "schema",
            "EBNF bytes",
            "automaton states",
            "min tokens",
            "check + language + automaton",
            "xgrammar compile",
            "planner (first plan)",
          ],
          rows: rows.map((r) => [
            r.name,
            r.ebnf_bytes,
            r.nfa_states,
            r.min_tokens,
            round(r.language_ms.p50),
            round(r.grammar_ms.p50),
            round(r.planner_ms.p50),
          ]),
        },
        {
          title: `(b) Per token over 32,064 logits, greedy, ${generations} generation(s) of up to ${budget} tokens per schema (µs, one thread)`,
          columns: [
            "schema",
            "tokens",
            "unconstrained mean",
            "constrained mean",
            "of which bitmask p50",
            "constrained p99",
            "added per token (mean)",
            "as share of a 10 ms / 25 ms step",
            "Hermes' token bias (mean)",
          ],
          rows: rows.map((r) => {
            const added = r.constrained_us.mean - r.unconstrained_us.mean;
            return [
              r.name,
              r.tokens,
              round(r.unconstrained_us.mean),
              round(r.constrained_us.mean),
              round(r.mask_us.p50),
              round(r.constrained_us.p99),
              round(added),
              `${share(added, 10)} / ${share(added, 25)}`,
              round(r.bias_us.mean),
            ];
          }),
        },
      ],
      notes: [
        "Compile figures are one-off costs per schema and model: the language part is cached by schema hash (SchemaCompiler), the xgrammar grammar and the planner per model (ConstraintCache, LRU).",
        "The Hermes column is the extra per-token work of hermes/structured.ts at this vocabulary size: building node-llama-cpp's TokenBias from the bitmask (JavaScript side only; the native sampler then applies the bias). It is measured on a fake tokenizer, without a model.",
        "No real model step is measured here: the shares are against 10 ms and 25 ms steps, as in section 3.",
      ],
      data: { rows, generations, budget },
    };
  },
};
