/**
 * The images install production dependencies only (`npm ci --omit=dev`), copy a few source folders,
 * and the edge image drops the model runtimes. This follows every import (static and dynamic) from
 * each image's entry points and checks that the image will have what they need. esbuild does the
 * import graph (it is what tsx runs on, so it resolves exactly as the containers will).
 */
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const pkg = JSON.parse(readFileSync("package.json", "utf8")) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};

/** The file a `tsx <file>` script runs. */
function scriptEntry(script: string): string {
  const command = pkg.scripts[script];
  const match = command?.match(/^tsx\s+(\S+\.ts)$/);
  if (!match?.[1])
    throw new Error(`package.json script ${script} is not "tsx <file>.ts": ${command}`);
  return match[1];
}

/** Source folders/files the Dockerfile's final stage copies from the build context. */
function copiedSources(dockerfile: string): string[] {
  const text = readFileSync(dockerfile, "utf8");
  const finalStage = text.slice(text.lastIndexOf("\nFROM "));
  return [...finalStage.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((m) =>
    (m[1] ?? "").trim().split(/\s+/).slice(0, -1),
  );
}

function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

async function importGraph(entryPoints: string[]) {
  const result = await build({
    entryPoints,
    bundle: true,
    write: false,
    metafile: true,
    platform: "node",
    format: "esm",
    packages: "external",
    outdir: "dist/import-graph",
    logLevel: "silent",
  });
  const files = Object.keys(result.metafile.inputs);
  const packages = new Set<string>();
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imported of input.imports) {
      if (!imported.external) continue;
      const name = imported.path.replace(/^node:/, "");
      if (builtinModules.includes(name) || builtinModules.includes(packageName(name))) continue;
      packages.add(packageName(imported.path));
    }
  }
  return { files, packages: [...packages].sort() };
}

const IMAGES = [
  {
    dockerfile: "docker/edge.Dockerfile",
    entries: [scriptEntry("start:edge"), scriptEntry("watchdog")],
    removed: ["node-llama-cpp", "onnxruntime-node"],
  },
  {
    dockerfile: "docker/gpu-node.Dockerfile",
    entries: [scriptEntry("start:gpu-node"), scriptEntry("models:pull")],
    removed: [],
  },
];

describe.each(IMAGES)("$dockerfile", ({ dockerfile, entries: all, removed }) => {
  // A missing entry fails once, below; the graph checks look at the entries that exist.
  const entries = all.filter((entry) => existsSync(entry));

  it("has the entry points its commands run", () => {
    expect(
      all.filter((entry) => !existsSync(entry)),
      "missing entry files",
    ).toEqual([]);
  });

  it("has every package its entries import among the production dependencies", async () => {
    const { packages } = await importGraph(entries);
    expect(packages.length).toBeGreaterThan(0);
    const notProduction = packages.filter((name) => !(name in pkg.dependencies));
    expect(notProduction, "imported at run time but not in dependencies").toEqual([]);
    const gone = packages.filter(
      (name) => removed.includes(name) || name.startsWith("@node-llama-cpp/"),
    );
    expect(gone, `imported but removed from ${dockerfile}`).toEqual([]);
  });

  it("copies every source file its entries load", async () => {
    const { files } = await importGraph(entries);
    const copied = copiedSources(dockerfile);
    const missing = files.filter(
      (file) => !copied.some((source) => file === source || file.startsWith(`${source}/`)),
    );
    expect(missing).toEqual([]);
  });
});
