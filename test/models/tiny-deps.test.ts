/**
 * `npm run models:tiny` must work in an image installed with `npm ci --omit=dev`: every package
 * its code imports (followed through our own files) must be a production dependency, and so must
 * everything those packages need, as the lockfile records it.
 */
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..", "..");
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/g;

function importsOf(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const match of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const spec = match[1] as string;
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      else if (!spec.startsWith("node:") && !builtinModules.includes(spec)) {
        const parts = spec.split("/");
        packages.add(spec.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] as string));
      }
    }
  };
  visit(entry);
  return { files, packages };
}

interface LockEntry {
  dev?: boolean;
  dependencies?: Record<string, string>;
}

describe("models:tiny dependencies", () => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
    scripts: Record<string, string>;
  };
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };

  it("imports only production dependencies, all the way down the lockfile", () => {
    const script = pkg.scripts["models:tiny"] ?? "";
    const entry = /tsx (\S+)/.exec(script)?.[1];
    expect(entry, script).toBe("gpu-node/models/tiny/cli.ts");
    const { files, packages } = importsOf(join(root, entry as string));
    expect(files.size).toBeGreaterThan(5);
    expect([...packages].sort()).toContain("onnx-proto");
    // tsx runs the command; it must be there too.
    for (const name of [...packages, "tsx"]) {
      expect(pkg.dependencies, `${name} is not in "dependencies"`).toHaveProperty(name);
      const seen = new Set<string>();
      const walk = (path: string) => {
        if (seen.has(path)) return;
        seen.add(path);
        const item = lock.packages[path];
        expect(item, path).toBeDefined();
        expect(item?.dev, `${path} (needed by ${name}) is dev-only in the lockfile`).not.toBe(true);
        for (const dep of Object.keys(item?.dependencies ?? {})) {
          // npm's resolution: nested first, then up the tree.
          let dir = path;
          for (;;) {
            const candidate = `${dir}/node_modules/${dep}`;
            if (lock.packages[candidate]) {
              walk(candidate);
              break;
            }
            const up = dir.lastIndexOf("/node_modules/");
            if (up < 0) {
              walk(`node_modules/${dep}`);
              break;
            }
            dir = dir.slice(0, up);
          }
        }
      };
      walk(`node_modules/${name}`);
    }
  });
});
