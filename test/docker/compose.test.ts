/**
 * docker/compose.yaml, validated by a real Compose implementation (Debian's docker-compose 1.29,
 * installed by .ci/install-docker.sh: `config -q`, offline) and its resolved service graph checked.
 * In CI (CI=true) a missing docker-compose FAILS; elsewhere the Compose-backed tests are skipped
 * with the reason in the suite's name.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { WatchdogEnv } from "../../gpu-node/watchdog/settings.ts";

const run = promisify(execFile);
const COMPOSE_FILE = "docker/compose.yaml";
const composeText = readFileSync(COMPOSE_FILE, "utf8");
const envTemplate = readFileSync(".env.template", "utf8");

function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

const dockerCompose = which("docker-compose");
const inCI = process.env.CI === "true";
const skip = dockerCompose === undefined && !inCI;

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  container_name?: string;
  environment?: Record<string, string>;
  ports?: Array<{ published: number | string; target: number }>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  deploy?: {
    resources?: {
      reservations?: { devices?: Array<{ capabilities: string[]; driver?: string }> };
    };
  };
  group_add?: Array<string | number>;
  profiles?: string[];
  init?: boolean;
  restart?: string;
}
interface ComposeConfig {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** What the template leaves empty and the compose file requires. */
const REQUIRED = { API_KEYS: "k", GPU_NODE_TOKEN: "t" };

/** Copies docker/ into a scratch "repository" with a .env, as a user would have it. */
async function scratchRepo(envExtra: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "compose-"));
  // docker/.env is a link to ../.env: keep it a link, as written.
  await cp("docker", join(dir, "docker"), { recursive: true, verbatimSymlinks: true });
  const extra = Object.entries(envExtra)
    .map(([key, value]) => `${key}=${value}\n`)
    .join("");
  await writeFile(join(dir, ".env"), `${envTemplate}\n${extra}`);
  return dir;
}

async function composeConfig(dir: string, quiet = false, profiles: string[] = []) {
  return run(
    dockerCompose ?? "docker-compose",
    [
      "--env-file",
      join(dir, ".env"),
      "-f",
      join(dir, COMPOSE_FILE),
      ...profiles.flatMap((p) => ["--profile", p]),
      "config",
      ...(quiet ? ["-q"] : []),
    ],
    { cwd: dir },
  );
}

describe("docker/compose.yaml as written", () => {
  it("has no top-level name: (older Compose rejects it)", () => {
    expect(Object.keys(parse(composeText) as object)).not.toContain("name");
  });

  it(".env.template documents every variable the compose file and the watchdog read", () => {
    const documented = new Set(
      [...envTemplate.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]),
    );
    const interpolated = [...composeText.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]);
    const watchdog = Object.keys(WatchdogEnv.shape);
    const needed = new Set([
      ...interpolated,
      ...watchdog,
      "COMPOSE_PROJECT_NAME",
      "HERMES_CTX",
      "API_KEYS",
      "GPU_NODE_TOKEN",
      "PHI3_DEVICE",
    ]);
    expect([...needed].filter((name) => !documented.has(name as string))).toEqual([]);
  });
});

describe.skipIf(skip)(
  skip
    ? "compose with docker-compose: SKIPPED, docker-compose not found (run .ci/install-docker.sh as root)"
    : "compose with docker-compose",
  () => {
    let dir: string;
    let config: ComposeConfig;

    beforeAll(async () => {
      if (!dockerCompose) {
        throw new Error(
          "CI=true and docker-compose is missing: run `bash .ci/install-docker.sh` before `npm test`.",
        );
      }
      dir = await scratchRepo({
        API_KEYS: "key-from-dotenv",
        HERMES_CTX: "4096",
        GPU_NODE_TOKEN: "token-from-dotenv",
        POSTGRES_PASSWORD: "pw123",
      });
      config = parse((await composeConfig(dir)).stdout) as ComposeConfig;
    });

    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it("validates (config -q) without warnings", async () => {
      const { stdout, stderr } = await composeConfig(dir, true);
      expect(stdout).toBe("");
      expect(stderr).toBe("");
    });

    it("rejects a broken file (the validator is real)", async () => {
      const bad = await scratchRepo(REQUIRED);
      try {
        await writeFile(join(bad, COMPOSE_FILE), `name: x\n${composeText}`);
        await expect(composeConfig(bad, true)).rejects.toThrow(/name/);
        await writeFile(
          join(bad, COMPOSE_FILE),
          composeText.replace("condition: service_healthy", "condition: when_it_feels_like_it"),
        );
        await expect(composeConfig(bad, true)).rejects.toThrow();
      } finally {
        await rm(bad, { recursive: true, force: true });
      }
    });

    it("has the seven services and their named volumes", () => {
      expect(Object.keys(config.services).sort()).toEqual([
        "edge",
        "grafana",
        "llm-sidecar",
        "models",
        "postgres",
        "prometheus",
        "vram-watchdog",
      ]);
      expect(Object.keys(config.volumes ?? {}).sort()).toEqual([
        "edge-data",
        "grafana-data",
        "models",
        "pgdata",
        "prometheus-data",
      ]);
      for (const [name, service] of Object.entries(config.services)) {
        for (const target of Object.keys(service.depends_on ?? {})) {
          expect(config.services, `${name} depends on ${target}`).toHaveProperty(target);
        }
      }
    });

    it("postgres: named volume and a healthcheck", () => {
      const pg = config.services.postgres;
      expect(pg?.volumes).toContain("pgdata:/var/lib/postgresql/data:rw");
      expect(pg?.healthcheck?.test?.join(" ")).toContain("pg_isready");
      expect(pg?.environment?.POSTGRES_PASSWORD).toBe("pw123");
    });

    it("edge: port 8000, waits for a healthy postgres, reaches it and the GPU node by service name", () => {
      const edge = config.services.edge;
      expect(edge?.ports).toEqual([{ published: 8000, target: 8000 }]);
      expect(edge?.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
      expect(edge?.environment).toMatchObject({
        HOST: "0.0.0.0",
        PORT: "8000",
        DATABASE_URL: "postgres://postgres:pw123@postgres:5432/llm_sidecar",
        GPU_NODE_URL: "http://llm-sidecar:8001",
        API_KEYS: "key-from-dotenv",
        GPU_NODE_TOKEN: "token-from-dotenv",
      });
      expect(edge?.build?.dockerfile).toBe("docker/edge.Dockerfile");
      expect(edge?.healthcheck?.test?.join(" ")).toContain("/health");
    });

    it("llm-sidecar: GPU reservation, models volume, HERMES_CTX from .env, healthcheck", () => {
      const gpu = config.services["llm-sidecar"];
      const devices = gpu?.deploy?.resources?.reservations?.devices ?? [];
      expect(devices.some((d) => d.capabilities.includes("gpu"))).toBe(true);
      expect(gpu?.volumes).toContain("models:/models:ro");
      expect(gpu?.environment).toMatchObject({
        HERMES_CTX: "4096",
        MODELS_DIR: "/models",
        GPU_NODE_HOST: "0.0.0.0",
        GPU_NODE_PORT: "8001",
        GPU_NODE_TOKEN: "token-from-dotenv",
      });
      expect(gpu?.build?.dockerfile).toBe("docker/gpu-node.Dockerfile");
      expect(gpu?.healthcheck?.test?.join(" ")).toContain("/v1/health");
      expect(gpu?.container_name).toBe("llm-sidecar");
    });

    it("vram-watchdog: Docker socket mounted, watching the GPU container by its name", () => {
      const dog = config.services["vram-watchdog"];
      expect(dog?.volumes).toContain("/var/run/docker.sock:/var/run/docker.sock:rw");
      expect(dog?.environment?.DOCKER_HOST).toBe("unix:///var/run/docker.sock");
      expect(dog?.environment?.WATCHDOG_CONTAINER).toBe(
        config.services["llm-sidecar"]?.container_name,
      );
      expect(dog?.command).toEqual(["node", "--import", "tsx", "gpu-node/watchdog/main.ts"]);
      expect(dog?.image).toBe(config.services.edge?.image);
    });

    it("a renamed GPU container is renamed for the watchdog too", async () => {
      const renamed = await scratchRepo({ ...REQUIRED, WATCHDOG_CONTAINER: "gpu-box-1" });
      try {
        const c = parse((await composeConfig(renamed)).stdout) as ComposeConfig;
        expect(c.services["llm-sidecar"]?.container_name).toBe("gpu-box-1");
        expect(c.services["vram-watchdog"]?.environment?.WATCHDOG_CONTAINER).toBe("gpu-box-1");
      } finally {
        await rm(renamed, { recursive: true, force: true });
      }
    });

    it("monitoring: Prometheus and a provisioned Grafana under their own profile", async () => {
      const c = parse((await composeConfig(dir, false, ["monitoring"])).stdout) as ComposeConfig;
      const prom = c.services.prometheus;
      const grafana = c.services.grafana;
      expect(prom?.profiles).toEqual(["monitoring"]);
      expect(grafana?.profiles).toEqual(["monitoring"]);
      expect(prom?.volumes?.some((v) => v.endsWith(":/etc/prometheus/prometheus.yml:ro"))).toBe(
        true,
      );
      expect(grafana?.volumes?.some((v) => v.endsWith(":/etc/grafana/provisioning:ro"))).toBe(true);
      expect(grafana?.volumes?.some((v) => v.endsWith(":/var/lib/grafana/dashboards:ro"))).toBe(
        true,
      );
      // Only the profile starts them (the other services have none, or "models").
      for (const [name, service] of Object.entries(c.services)) {
        if (name !== "prometheus" && name !== "grafana") {
          expect(service.profiles ?? [], name).not.toContain("monitoring");
        }
      }
      expect(c.services["vram-watchdog"]?.environment?.WATCHDOG_METRICS_HOST).toBe("0.0.0.0");
    });

    it("models: a one-shot every `up` runs before the GPU node, with the node's GPU and .env", () => {
      const models = config.services.models;
      const gpu = config.services["llm-sidecar"];
      expect(models?.profiles).toBeUndefined();
      expect(models?.restart).toBe("no");
      expect(models?.command).toEqual(["node", "--import", "tsx", "gpu-node/models/pull-cli.ts"]);
      expect(models?.volumes).toContain("models:/models:rw");
      expect(models?.environment?.MODELS_DIR).toBe(gpu?.environment?.MODELS_DIR);
      // Same GPU and same PHI3_DEVICE: `auto` picks the variant the node loads (test/models/variant).
      expect(models?.deploy).toEqual(gpu?.deploy);
      expect(models?.environment?.PHI3_DEVICE).toBe(gpu?.environment?.PHI3_DEVICE);
      expect(models?.image).toBe(gpu?.image);
      expect(gpu?.depends_on).toEqual({
        models: { condition: "service_completed_successfully" },
      });
    });

    it("the seed's command, without --env-file, reads the repository's .env (docker/.env links to it)", async () => {
      const seed = await scratchRepo({ ...REQUIRED, HERMES_CTX: "2048" });
      try {
        const { stdout } = await run(
          dockerCompose ?? "docker-compose",
          ["-f", "docker/compose.yaml", "config"],
          { cwd: seed },
        );
        const c = parse(stdout) as ComposeConfig;
        expect(c.services["llm-sidecar"]?.environment).toMatchObject({
          GPU_NODE_TOKEN: "t",
          HERMES_CTX: "2048",
        });
      } finally {
        await rm(seed, { recursive: true, force: true });
      }
    });

    it("edge: healthy means serving (a 503 from /health is unhealthy)", () => {
      const test = config.services.edge?.healthcheck?.test ?? [];
      expect(test.slice(-2)).toEqual([
        "/app/docker/healthcheck.mjs",
        "http://127.0.0.1:8000/health",
      ]);
    });

    it.each([
      [{}, "API_KEYS"],
      [{ API_KEYS: "k" }, "GPU_NODE_TOKEN"],
    ])(
      "the template .env with %j stops at config time, once, saying to set %s",
      async (extra, variable) => {
        const bare = await scratchRepo(extra);
        try {
          const error = await composeConfig(bare, true).then(
            () => undefined,
            (err: { code: number; stderr: string }) => err,
          );
          expect(error?.code).toBe(1);
          const lines = (error?.stderr ?? "").trim().split("\n");
          expect(lines).toHaveLength(1);
          expect(lines[0]).toContain(`set ${variable} in .env`);
        } finally {
          await rm(bare, { recursive: true, force: true });
        }
      },
    );
  },
);
