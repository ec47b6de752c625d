/**
 * The Worker bundle, built offline as `npm run build:worker` does (wrangler deploy --dry-run), must
 * hold no Node-only code: no project file may import a Node built-in (nodejs_compat would polyfill
 * some of them silently, which is why this reads esbuild's metafile instead of trusting the build
 * to fail), and no Node-only package may be in it.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const run = promisify(execFile);

/** Packages that only work on Node; none may reach the Worker. */
const NODE_ONLY_PACKAGES =
  /node_modules\/(pino|@hono\/node-server|@electric-sql\/pglite|node-llama-cpp|onnxruntime-node|dockerode|@huggingface\/tokenizers|@mlc-ai\/web-xgrammar|tsx)\//;
const BUILTINS = new Set(builtinModules);

interface Metafile {
  inputs: Record<string, { imports: { path: string; original?: string; external?: boolean }[] }>;
  outputs: Record<string, { bytes: number }>;
}

/** Project files (not under node_modules) in the bundle, relative to the repository. */
function projectInputs(meta: Metafile): string[] {
  return Object.keys(meta.inputs).filter((f) => !f.includes("node_modules/"));
}

/** Every Node-only import or package in a bundle, as "file: what". */
function nodeOnlyImports(meta: Metafile): string[] {
  const problems: string[] = [];
  for (const [file, input] of Object.entries(meta.inputs)) {
    if (file.includes("node_modules/")) {
      if (NODE_ONLY_PACKAGES.test(file)) problems.push(`${file}: a Node-only package`);
      continue;
    }
    for (const imp of input.imports) {
      const name = imp.original ?? imp.path;
      if (name.startsWith("node:") || BUILTINS.has(name.split("/")[0] ?? "")) {
        problems.push(`${file}: imports ${name}`);
      }
    }
  }
  return problems;
}

/** `wrangler deploy --dry-run` into `outdir`, optionally with another entry; returns the metafile. */
async function buildWorker(outdir: string, entry?: string): Promise<Metafile> {
  const metafile = path.join(outdir, "meta.json");
  await run(
    process.execPath,
    [
      WRANGLER,
      "deploy",
      "--config",
      path.join(ROOT, "wrangler.toml"),
      "--dry-run",
      "--outdir",
      outdir,
      "--metafile",
      metafile,
      ...(entry ? [entry] : []),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      timeout: 120_000,
    },
  );
  return JSON.parse(await readFile(metafile, "utf8")) as Metafile;
}

describe("the Worker bundle (wrangler deploy --dry-run, offline)", () => {
  let dir: string;
  beforeAll(async () => {
    // Inside the repository (in the ignored .wrangler/) so that a stray entry resolves packages.
    await mkdir(path.join(ROOT, ".wrangler"), { recursive: true });
    dir = await mkdtemp(path.join(ROOT, ".wrangler", "bundle-test-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("builds from wrangler.toml with no Node-only import and no Node-only package", async () => {
    const out = path.join(dir, "real");
    const meta = await buildWorker(out);
    expect((await stat(path.join(out, "worker.js"))).size).toBeGreaterThan(0);
    const files = projectInputs(meta);
    expect(files).toContain("edge/worker.ts");
    expect(files).toContain("edge/app.ts");
    // Only the Workers-safe part of the project: no Node entry, mirror, migrator or PGlite.
    for (const file of files) expect(file).toMatch(/^(edge|db|gpu-node)\//);
    for (const nodeOnly of [
      "edge/node.ts",
      "edge/node-runtime/server.ts",
      "edge/node-runtime/jsonl-mirror.ts",
      "edge/export-cli.ts",
      "db/migrate.ts",
      "db/client.ts",
      "db/client-pglite.ts",
    ]) {
      expect(files).not.toContain(nodeOnly);
    }
    expect(nodeOnlyImports(meta)).toEqual([]);
  });

  it("catches a Node-only import or package that sneaks in beside the worker", async () => {
    // A file outside node_modules that imports node:fs and the real worker, as a stray edit would.
    const entry = path.join(dir, "sneaky-worker.ts");
    await writeFile(
      entry,
      [
        `import { readFileSync } from "node:fs";`,
        `import pino from "pino";`,
        `import worker from ${JSON.stringify(path.relative(dir, path.join(ROOT, "edge/worker.ts")))};`,
        `export default { fetch: (r: Request, e: never, c: never) => (String(readFileSync), pino(), worker.fetch(r, e, c)) };`,
        "",
      ].join("\n"),
    );
    const meta = await buildWorker(path.join(dir, "sneaky"), entry);
    const problems = nodeOnlyImports(meta);
    expect(problems.filter((p) => !p.includes("node_modules/"))).toEqual([
      expect.stringMatching(/sneaky-worker\.ts: imports node:fs$/),
    ]);
    expect(problems).toContainEqual(
      expect.stringMatching(/node_modules\/pino\/.*Node-only package/),
    );
  });
});
