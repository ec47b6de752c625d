/**
 * Settings are read one way: each entry hands the whole environment to a zod schema (edge/settings.ts,
 * gpu-node/settings.ts, gpu-node/watchdog/settings.ts, the CLIs' schemas) through the shared helpers
 * of gpu-node/contract/env.ts. No product or bench file picks single variables out of process.env.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/process.ts";

const PRODUCT = ["edge", "gpu-node", "db", "bench"];

/** `process.env.X`, `process.env[X]`, `process.env?.X` and `const { X } = process.env`. */
const SINGLE_READ = /process\.env\s*(\?\.\[?|\.|\[)\s*["'\w]|\}\s*=\s*process\.env\b/;

function offenders(text: string): string[] {
  return text
    .split("\n")
    .map((line, i) => ({ line: line.trim(), n: i + 1 }))
    .filter(({ line }) => !line.startsWith("//") && !line.startsWith("*"))
    .filter(({ line }) => SINGLE_READ.test(line))
    .map(({ line, n }) => `${n}: ${line}`);
}

describe("settings are read one way", () => {
  it("recognises the ways of reading one variable", () => {
    for (const line of [
      "const a = process.env.DATABASE_URL;",
      'const b = process.env["LOG_LEVEL"];',
      "const c = process.env?.HOME;",
      "const { PORT } = process.env;",
    ]) {
      expect(offenders(line), line).toHaveLength(1);
    }
    for (const line of [
      "parseEdgeSettings(process.env);",
      "env: { ...process.env, NO_COLOR: '1' },",
      "// as from process.env.",
    ]) {
      expect(offenders(line), line).toEqual([]);
    }
  });

  it("no file of edge/, gpu-node/, db/ or bench/ reads a single variable from process.env", () => {
    const found: string[] = [];
    for (const dir of PRODUCT) {
      const entries = readdirSync(path.join(REPO_ROOT, dir), {
        recursive: true,
        withFileTypes: true,
      });
      for (const e of entries) {
        if (!e.isFile() || !e.name.endsWith(".ts")) continue;
        const file = path.join(e.parentPath, e.name);
        for (const hit of offenders(readFileSync(file, "utf8"))) {
          found.push(`${path.relative(REPO_ROOT, file)}:${hit}`);
        }
      }
    }
    expect(found).toEqual([]);
  });
});
