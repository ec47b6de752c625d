/**
 * Loads @mlc-ai/web-xgrammar (xgrammar compiled to WASM) in Node.
 *
 * Its `lib/index.js` is a UMD bundle inside a `"type": "module"` package, so `import` fails in
 * Node. A UMD bundle that sees a CommonJS `require` registers itself on the global
 * object, so we give it `require` and `__filename` while it imports and initialises its WASM. Loaded once
 * per process (the WASM module is process-wide anyway); everything built from it is disposed by
 * its owner.
 */
import { createRequire } from "node:module";
import type * as XGrammarModule from "@mlc-ai/web-xgrammar";

export type XGrammar = typeof XGrammarModule;
export type CompiledGrammar = XGrammarModule.CompiledGrammar;
export type GrammarMatcher = XGrammarModule.GrammarMatcher;
export type TokenizerInfo = XGrammarModule.TokenizerInfo;

let loading: Promise<XGrammar> | undefined;

export function loadXGrammar(): Promise<XGrammar> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const entry = require.resolve("@mlc-ai/web-xgrammar");
    const g = globalThis as Record<string, unknown>;
    const saved = { require: g.require, __filename: g.__filename };
    g.require = require;
    g.__filename = entry;
    try {
      await import(entry);
      // The WASM binding initialises lazily on first use and needs `require` then: force it now.
      const api = g.xgrammar as XGrammar | undefined;
      await api?.Testings._jsonSchemaToEBNF('{"type": "null"}');
    } finally {
      g.require = saved.require;
      g.__filename = saved.__filename;
    }
    const api = g.xgrammar as XGrammar | undefined;
    if (api?.GrammarCompiler === undefined) throw new Error("@mlc-ai/web-xgrammar did not load");
    return api;
  })();
  return loading;
}

/** Whether token `id` is allowed by an xgrammar bitmask (one bit per token, 1 = allowed). */
export function bitmaskAllows(mask: Int32Array, id: number): boolean {
  return (((mask[id >>> 5] ?? 0) >>> (id & 31)) & 1) === 1;
}
