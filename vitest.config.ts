import { defineConfig } from "vitest/config";

/**
 * One Vitest project per layer, so a newcomer can run one (`npm test -- --project unit`);
 * `npm test` runs them all. A test file belongs to the first project whose patterns match it;
 * whatever no other project claims is a unit test.
 */
const LAYERS = {
  /** The edge's API cases in workerd, through the Worker's real entry; the bundle check. */
  workers: ["test/workers/**/*.test.ts"],
  /** The images, the compose file, the CI workflow, and the watchdog against a real dockerd. */
  docker: ["test/docker/**/*.test.ts", "test/watchdog/dockerd.test.ts"],
  /** Real processes: the entries as npm starts them, end to end, the CLIs. */
  process: [
    "test/e2e/**/*.test.ts",
    "test/**/*process*.test.ts",
    // Real Chromium (playwright-core) against a real server.
    "test/**/*.browser.test.ts",
    "test/models/cli.test.ts",
    "test/hermes/check.test.ts",
    // A private Postgres started and crashed by the test; CLIs run as processes; npm itself.
    "test/edge/{db-outage,export-lock}.test.ts",
    "test/review/datasets.test.ts",
    "test/install/npm.test.ts",
  ],
  /** The model runtimes in-process on tiny real models (node-llama-cpp, onnxruntime-node). */
  models: [
    "test/hermes/runtime.test.ts",
    "test/phi3/{runtime,thousand,tiny-model,batch}.test.ts",
    "test/models/gguf.test.ts",
    // Structured output on both tiny models (runtimes and the JSON routes over app.request).
    "test/structured/{http,property,real-world}.test.ts",
  ],
  /** In-process HTTP: app.request() or a loopback server, with real databases. */
  api: [
    "test/edge/{api,openai}.*.test.ts",
    "test/edge/{augment,cancel,db-down,export,metrics,gpu-router,node-connection}.test.ts",
    "test/edge/{errors-log,openai-cancel}.test.ts",
    "test/gpu-node/{app.*,loader,shutdown}.test.ts",
  ],
};

const claimed = Object.values(LAYERS).flat();

export default defineConfig({
  test: {
    // Two cores: more workers only thrash. Model tests set their own thread counts.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["test/**/*.test.ts"], exclude: claimed },
      },
      ...Object.entries(LAYERS).map(([name, include], i, all) => ({
        extends: true as const,
        test: {
          name,
          include,
          // First match wins: no file runs in two projects.
          exclude: all.slice(0, i).flatMap(([, earlier]) => earlier),
        },
      })),
    ],
  },
});
