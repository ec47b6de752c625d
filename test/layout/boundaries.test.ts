/**
 * The layering the README describes, checked on the source: edge/ and db/ import nothing from
 * gpu-node/ but its contract, and the contract imports nothing but zod and itself.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/process.ts";

/** Every .ts file under `dir` (relative to the repository root). */
function sources(dir: string): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => path.relative(REPO_ROOT, path.join(e.parentPath, e.name)));
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;

/** The module specifiers a file imports or re-exports, static and dynamic. */
function importsOf(text: string): string[] {
  return [...text.matchAll(SPECIFIER)].map((m) => m[1] as string);
}

/** Where a specifier points inside the repository, or undefined for a package. */
function target(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  return path.relative(REPO_ROOT, path.resolve(REPO_ROOT, path.dirname(file), specifier));
}

function violations(dirs: string[], allowed: (file: string, specifier: string) => boolean) {
  const found: string[] = [];
  for (const dir of dirs) {
    for (const file of sources(dir)) {
      for (const specifier of importsOf(readFileSync(path.join(REPO_ROOT, file), "utf8"))) {
        if (!allowed(file, specifier)) found.push(`${file} imports ${specifier}`);
      }
    }
  }
  return found;
}

describe("import boundaries", () => {
  it("finds static, dynamic and re-exported imports", () => {
    const text = [
      'import { a } from "../gpu-node/x.ts";',
      'import type { B } from "zod";',
      'export { c } from "./c.ts";',
      'const d = await import("../gpu-node/d.ts");',
      'import "./side-effect.ts";',
    ].join("\n");
    expect(importsOf(text)).toEqual([
      "../gpu-node/x.ts",
      "zod",
      "./c.ts",
      "../gpu-node/d.ts",
      "./side-effect.ts",
    ]);
  });

  it("edge/ and db/ reach into gpu-node/ only through gpu-node/contract/", () => {
    const found = violations(["edge", "db"], (file, specifier) => {
      const to = target(file, specifier);
      return !to?.startsWith("gpu-node/") || to.startsWith("gpu-node/contract/");
    });
    expect(found).toEqual([]);
  });

  it("gpu-node/contract/ imports only zod and itself", () => {
    const found = violations(["gpu-node/contract"], (file, specifier) => {
      const to = target(file, specifier);
      return to === undefined ? specifier === "zod" : to.startsWith("gpu-node/contract/");
    });
    expect(found).toEqual([]);
  });

  it("nothing in gpu-node/ or db/ reaches back up into edge/", () => {
    const found = violations(["gpu-node", "db"], (file, specifier) => {
      return !target(file, specifier)?.startsWith("edge/");
    });
    expect(found).toEqual([]);
  });
});
