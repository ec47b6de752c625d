/** The edge's large static files on Node: read once from node_modules when first asked for. */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import type { StaticAssets } from "../deps.ts";

const require = createRequire(import.meta.url);

/** @scalar/api-reference's standalone browser bundle (the package does not export its path). */
export function apiReferenceScriptPath(): string {
  return path.join(path.dirname(require.resolve("@scalar/api-reference")), "browser/standalone.js");
}

export function nodeAssets(): StaticAssets {
  let script: Promise<string> | undefined;
  return {
    apiReferenceJs: () => {
      script ??= readFile(apiReferenceScriptPath(), "utf8");
      return script;
    },
  };
}
