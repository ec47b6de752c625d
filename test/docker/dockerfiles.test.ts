/**
 * Lints docker/*.Dockerfile: dockerfile-utils' validator (syntax, flags, ports, casing) plus the
 * rules this project holds its images to (hadolint is not available offline; these are the subset
 * that matters here).
 */
import { existsSync, readFileSync } from "node:fs";
import { validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined and comment lines dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current: Instruction | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && !current)) return;
    if (!current) {
      const [keyword = "", ...rest] = line.split(/\s+/);
      current = { keyword: keyword.toUpperCase(), args: rest.join(" "), line: i + 1 };
    } else {
      current.args += ` ${line}`;
    }
    if (current.args.endsWith("\\")) {
      current.args = current.args.slice(0, -1).trimEnd();
    } else {
      out.push(current);
      current = undefined;
    }
  });
  return out;
}

/** The instructions of the last stage (what the image runs as). */
function finalStage(all: Instruction[]): Instruction[] {
  const lastFrom = all.map((i) => i.keyword).lastIndexOf("FROM");
  return all.slice(lastFrom);
}

const DOCKERFILES = ["docker/gpu-node.Dockerfile", "docker/edge.Dockerfile"] as const;

describe.each(DOCKERFILES)("%s", (path) => {
  const text = readFileSync(path, "utf8");
  const all = instructions(text);
  const last = finalStage(all);
  const args = Object.fromEntries(
    all
      .filter((i) => i.keyword === "ARG" && i.args.includes("="))
      .map((i) => i.args.split("=", 2) as [string, string]),
  );

  it("passes dockerfile-utils' validator with no diagnostics", () => {
    expect(validate(text)).toEqual([]);
  });

  it("pins every base image to a tag (no implicit or explicit latest)", () => {
    for (const from of all.filter((i) => i.keyword === "FROM")) {
      const image = (from.args.split(/\s+/)[0] ?? "").replace(
        /\$\{(\w+)\}/g,
        (_, name: string) => args[name] ?? `\${${name}}`,
      );
      const isStage = all.some((i) => i.keyword === "FROM" && i.args.endsWith(` AS ${image}`));
      if (isStage) continue;
      expect(image, `line ${from.line}`).toMatch(/:[\w.-]+$/);
      expect(image, `line ${from.line}`).not.toMatch(/:latest$/);
    }
  });

  it("runs as an unprivileged user, with a HEALTHCHECK and an exec-form CMD", () => {
    const users = last.filter((i) => i.keyword === "USER");
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)?.args).not.toMatch(/^(root|0)(:|$)/);
    const health = last.filter((i) => i.keyword === "HEALTHCHECK");
    expect(health).toHaveLength(1);
    expect(health[0]?.args).toMatch(/CMD \[/);
    expect(last.find((i) => i.keyword === "CMD")?.args).toMatch(/^\[/);
  });

  it("keeps apt lean: --no-install-recommends, lists removed in the same layer", () => {
    for (const run of all.filter(
      (i) => i.keyword === "RUN" && i.args.includes("apt-get install"),
    )) {
      expect(run.args, `line ${run.line}`).toContain("--no-install-recommends");
      expect(run.args, `line ${run.line}`).toContain("rm -rf /var/lib/apt/lists/*");
      expect(run.args, `line ${run.line}`).toContain("apt-get update");
    }
  });

  it("copies named paths that exist and are let through its .dockerignore; never the whole context", () => {
    const ignore = readFileSync(`${path}.dockerignore`, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("!"))
      .map((line) => line.slice(1));
    for (const copy of all.filter((i) => i.keyword === "COPY" && !i.args.includes("--from"))) {
      const sources = copy.args
        .split(/\s+/)
        .filter((a) => !a.startsWith("--"))
        .slice(0, -1);
      for (const source of sources) {
        expect(source, `line ${copy.line}`).not.toMatch(/^\.\/?$/);
        expect(existsSync(source), `${source} (line ${copy.line}) exists`).toBe(true);
        expect(ignore, `${source} is let through ${path}.dockerignore`).toContain(
          source.replace(/\/$/, ""),
        );
      }
    }
    expect(text).not.toMatch(/^\s*ADD\s/m);
  });

  it("installs production dependencies from the lockfile with install scripts off", () => {
    const npmCi = all.find((i) => i.keyword === "RUN" && i.args.includes("npm ci"));
    expect(npmCi?.args).toContain("--omit=dev");
    expect(npmCi?.args).toContain("--ignore-scripts");
  });
});

describe("docker/gpu-node.Dockerfile specifics", () => {
  const text = readFileSync("docker/gpu-node.Dockerfile", "utf8");
  const all = instructions(text);

  it("bases the runtime on NVIDIA's CUDA 13 runtime and adds CUDA 12 + cuDNN 9 for onnxruntime", () => {
    expect(text).toMatch(/ARG CUDA_IMAGE=nvidia\/cuda:13\.\d+\.\d+-runtime-ubuntu\d+\.\d+/);
    const apt = all.find((i) => i.keyword === "RUN" && i.args.includes("apt-get install"));
    for (const pkg of [
      "cuda-cudart-12-",
      "libcublas-12-",
      "libcufft-12-",
      "libcurand-12-",
      "libcudnn9-cuda-12",
    ]) {
      expect(apt?.args).toContain(pkg);
    }
    const ld = all.find((i) => i.keyword === "ENV" && i.args.startsWith("LD_LIBRARY_PATH="));
    expect(ld?.args).toMatch(/cuda-13\.\d+\/targets\/x86_64-linux\/lib/);
    expect(ld?.args).toMatch(/cuda-12\.\d+\/targets\/x86_64-linux\/lib/);
  });

  it("installs onnxruntime-node's CUDA 12 provider and fails the build without it", () => {
    const run = all.find((i) => i.keyword === "RUN" && i.args.includes("npm ci"));
    expect(run?.args).toContain("ONNXRUNTIME_NODE_INSTALL=cuda12");
    expect(run?.args).toContain("test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/");
  });

  it("keeps models on a volume (nothing from models/ baked in) and serves the node's health", () => {
    expect(all.some((i) => i.keyword === "VOLUME" && i.args.includes("/models"))).toBe(true);
    expect(all.some((i) => i.keyword === "COPY" && /(^|\s)\.?\/?models\b/.test(i.args))).toBe(
      false,
    );
    expect(text).toMatch(/HEALTHCHECK[\s\S]*\/v1\/health/);
    expect(text).toContain('CMD ["node", "--import", "tsx", "gpu-node/main.ts"]');
  });
});

describe("docker/edge.Dockerfile specifics", () => {
  const text = readFileSync("docker/edge.Dockerfile", "utf8");

  it("is Node slim, serves /health on 8000 and runs the edge's Node entry", () => {
    expect(text).toMatch(/FROM node:\$\{NODE_VERSION\}-bookworm-slim/);
    expect(text).toContain("EXPOSE 8000");
    expect(text).toMatch(/HEALTHCHECK[\s\S]*:8000\/health/);
    expect(text).toContain('CMD ["node", "--import", "tsx", "edge/node.ts"]');
  });
});
