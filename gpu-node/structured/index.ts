/**
 * Structured output for any JSON Schema of the subset (README "Structured output"), for both
 * models: schema -> language (schema.ts) -> EBNF for xgrammar's token masks and a byte automaton
 * for the budget planner, compiled once per schema and cached by the schema's hash.
 *
 * Two caches, both bounded LRUs:
 * - SchemaCompiler: model-independent (the language, its EBNF and automaton);
 * - ConstraintCache: per model (xgrammar's compiled grammar on that model's vocabulary and the
 *   planner on its tokens). A constraint is leased for the length of a generation; one evicted
 *   while leased is disposed when its last lease ends.
 */
import { createHash } from "node:crypto";
import { Ajv2020 } from "ajv/dist/2020.js";
import { ServiceError } from "../contract/errors.ts";
import type { CompiledGrammar, TokenizerInfo, XGrammar } from "../phi3/xgrammar.ts";
import { BudgetPlanner, type TokenBytes } from "./budget.ts";
import { ByteNfa } from "./byte-nfa.ts";
import { toEbnf } from "./ebnf.ts";
import type { Lang } from "./language.ts";
import { schemaLanguage } from "./schema.ts";

type GrammarCompiler = Awaited<ReturnType<XGrammar["GrammarCompiler"]["createGrammarCompiler"]>>;

export { BudgetPlanner, type TokenBytes } from "./budget.ts";
export { ByteNfa, type StateSet } from "./byte-nfa.ts";
export { toEbnf } from "./ebnf.ts";
export type { Lang } from "./language.ts";
export { boundedNumber } from "./numbers.ts";
export { type JsonSchema, layout, schemaLanguage } from "./schema.ts";

export interface CompiledSchema {
  /** sha256 of the schema's JSON text (key order included: it fixes the output's key order). */
  readonly hash: string;
  readonly lang: Lang;
  readonly ebnf: string;
  readonly nfa: ByteNfa;
}

/** What a model's generation loop needs for one schema (Phi-3's `constraint`, Hermes's too). */
export interface Constraint {
  readonly grammar: CompiledGrammar;
  readonly nfa: ByteNfa;
  readonly planner: BudgetPlanner;
  /** The fewest tokens a valid answer needs on this model: the smallest usable max_tokens. */
  readonly minTokens: number;
}

export interface ConstraintLease {
  readonly constraint: Constraint;
  readonly schema: CompiledSchema;
  /** Ends the lease (idempotent). */
  release(): void;
}

export function schemaHash(schema: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify(schema) ?? "")
    .digest("hex");
}

/** A small LRU over a Map (insertion order = recency). */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(
    private readonly capacity: number,
    private readonly onEvict: (value: V) => void = () => {},
  ) {}
  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const [oldest, evicted] = this.map.entries().next().value as [string, V];
      this.map.delete(oldest);
      this.onEvict(evicted);
    }
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  values(): V[] {
    return [...this.map.values()];
  }
  clear(): void {
    this.map.clear();
  }
  get size(): number {
    return this.map.size;
  }
}

/** Schema -> language, EBNF, automaton; checks the subset (throws ServiceError). */
export class SchemaCompiler {
  private readonly cache: Lru<CompiledSchema>;
  /** Meta-schema checks and enum filtering; strict mode off (we refuse unknown keywords). */
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });

  private readonly checked: Lru<true>;

  constructor(capacity = 128) {
    this.cache = new Lru(capacity);
    this.checked = new Lru(capacity * 8);
  }

  /** The subset check alone (no automaton): throws like compile, caches what passed. */
  check(schema: unknown): void {
    const hash = schemaHash(schema);
    if (this.cache.get(hash) || this.checked.get(hash)) return;
    schemaLanguage(schema, this.ajv);
    this.checked.set(hash, true);
  }

  compile(schema: unknown): CompiledSchema {
    const hash = schemaHash(schema);
    const known = this.cache.get(hash);
    if (known) return known;
    const { lang } = schemaLanguage(schema, this.ajv);
    const compiled: CompiledSchema = { hash, lang, ebnf: toEbnf(lang), nfa: new ByteNfa(lang) };
    this.cache.set(hash, compiled);
    return compiled;
  }
}

interface Entry {
  ready: Promise<{ constraint: Constraint; schema: CompiledSchema }>;
  leases: number;
  evicted: boolean;
}

export interface ConstraintCacheOptions {
  xgrammar: XGrammar;
  /** xgrammar's view of the model's vocabulary (owned by the caller, outlives this cache). */
  tokenizerInfo: TokenizerInfo;
  /** The bytes of each of the model's tokens (the planner's view of the same vocabulary). */
  vocabulary: TokenBytes;
  schemas?: SchemaCompiler;
  /** Compiled grammars kept (default 32). */
  capacity?: number;
}

/** Per-model compiled constraints, cached by schema hash. */
export class ConstraintCache {
  private readonly entries: Lru<Entry>;
  private readonly schemas: SchemaCompiler;
  private compiler: Promise<GrammarCompiler> | undefined;
  private disposed = false;

  constructor(private readonly options: ConstraintCacheOptions) {
    this.schemas = options.schemas ?? new SchemaCompiler();
    this.entries = new Lru(options.capacity ?? 32, (entry) => {
      entry.evicted = true;
      if (entry.leases === 0) void disposeEntry(entry);
    });
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The constraint for `schema` (compiled on first use, then cached), leased until `release()`.
   * Throws ServiceError("invalid_schema" | "unsupported_schema") for a schema it refuses.
   */
  async lease(schema: unknown): Promise<ConstraintLease> {
    if (this.disposed) throw new Error("constraint cache disposed");
    const compiled = this.schemas.compile(schema);
    let entry = this.entries.get(compiled.hash);
    if (!entry) {
      const created: Entry = { ready: this.build(compiled), leases: 0, evicted: false };
      // A failed compile is not cached.
      created.ready.catch(() => this.entries.delete(compiled.hash));
      this.entries.set(compiled.hash, created);
      entry = created;
    }
    entry.leases++;
    const held = entry;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      held.leases--;
      if (held.evicted && held.leases === 0) void disposeEntry(held);
    };
    try {
      const { constraint } = await held.ready;
      return { constraint, schema: compiled, release };
    } catch (error) {
      release();
      throw error;
    }
  }

  private async build(schema: CompiledSchema) {
    this.compiler ??= this.options.xgrammar.GrammarCompiler.createGrammarCompiler(
      this.options.tokenizerInfo,
    );
    const compiler = await this.compiler;
    let grammar: CompiledGrammar;
    try {
      grammar = await compiler.compileGrammar(schema.ebnf);
    } catch (error) {
      // Our EBNF is generated; xgrammar refusing it is a bug, but the request still fails closed.
      throw new ServiceError(
        "unsupported_schema",
        "json_schema: the grammar compiler refused the schema's grammar.",
        { keyword: "json_schema", path: "#" },
        { cause: error },
      );
    }
    const planner = new BudgetPlanner(schema.nfa, this.options.vocabulary);
    const minTokens = planner.cost(schema.nfa.initial());
    return { constraint: { grammar, nfa: schema.nfa, planner, minTokens }, schema };
  }

  /** Disposes every compiled grammar (waits for none: call when no generation runs). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const all = this.entries.values();
    this.entries.clear();
    for (const entry of all) await disposeEntry(entry);
    const compiler = this.compiler;
    this.compiler = undefined;
    if (compiler) (await compiler.catch(() => undefined))?.dispose();
  }
}

async function disposeEntry(entry: Entry): Promise<void> {
  try {
    (await entry.ready).constraint.grammar.dispose();
  } catch {
    // A failed compile has nothing to dispose.
  }
}

/** The 422 for a budget below the schema's minimum (before any token is generated). */
export function budgetTooSmall(maxTokens: number, minTokens: number): ServiceError {
  return new ServiceError(
    "budget_too_small",
    `max_tokens ${maxTokens} is too small: the shortest valid answer for this schema needs ${minTokens} tokens`,
    { min_max_length: minTokens, max_tokens: maxTokens },
  );
}
