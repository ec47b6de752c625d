/**
 * A fresh clone's install: npm reads nothing it does not know (no "Unknown project config"
 * warning), runs no dependency's install script on any npm major, and the committed lockfile is
 * what `npm install` writes (.ci/lockfile-check.sh, which .ci/run calls, fails otherwise).
 * The lockfile cases ask the npm registry for package metadata, as `npm install` does.
 */
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync("package.json", "utf8")) as {
  engines: { node: string };
  allowScripts?: Record<string, boolean>;
};

describe("npm configuration", () => {
  it("the project .npmrc holds only settings npm knows (no warning on any command)", async () => {
    const { stdout, stderr } = await run("npm", ["config", "get", "ignore-scripts"]);
    expect(stderr).toBe("");
    expect(stdout.trim()).toBe("true");
  });

  it("every install script in the tree is decided in allowScripts (npm 11 lists none as unreviewed)", async () => {
    const { stdout, stderr } = await run("npm", ["install-scripts", "ls", "--json"]);
    expect(stderr).toBe("");
    expect(JSON.parse(stdout)).toEqual({ allowScripts: [] });
    // The decision: none of them runs (the model runtimes ship their CPU binaries).
    expect(Object.values(pkg.allowScripts ?? {}).every((allowed) => allowed === false)).toBe(true);
    expect(pkg.allowScripts).toHaveProperty("onnxruntime-node", false);
    expect(pkg.allowScripts).toHaveProperty("node-llama-cpp", false);
  });
});

describe("the lockfile check (.ci/lockfile-check.sh)", () => {
  let dir: string;
  const check = () => run("bash", [".ci/lockfile-check.sh", dir]);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lockfile-"));
    for (const name of ["package.json", "package-lock.json", ".npmrc"]) {
      copyFileSync(name, join(dir, name));
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("passes on the committed package.json and package-lock.json", async () => {
    const { stdout } = await check();
    expect(stdout).toContain("matches");
  });

  it("fails, saying what to run, when package.json changed and the lockfile did not", async () => {
    const changed = JSON.parse(readFileSync("package.json", "utf8")) as typeof pkg;
    changed.engines.node = ">=20.11";
    writeFileSync(join(dir, "package.json"), `${JSON.stringify(changed, null, 2)}\n`);
    const error = await check().then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(error?.code).toBe(1);
    expect(error?.stderr).toContain('"node": ">=20.11"');
    expect(error?.stderr).toContain("node .ci/lockfile-optional.mjs");
  });
});
