/** .env.template documents every variable the services read, each with a comment above it. */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { EdgeSettingsSchema } from "../../edge/settings.ts";
import { PullEnv } from "../../gpu-node/models/pull-settings.ts";
import { EnvSchema as GpuNodeEnvSchema } from "../../gpu-node/settings.ts";
import { WatchdogEnv } from "../../gpu-node/watchdog/settings.ts";

const template = readFileSync(new URL("../../.env.template", import.meta.url), "utf8").split("\n");

it.each([
  ["edge", Object.keys(EdgeSettingsSchema.shape)],
  ["gpu-node", Object.keys(GpuNodeEnvSchema.shape)],
  ["watchdog", Object.keys(WatchdogEnv.shape)],
  ["models:pull", Object.keys(PullEnv.shape)],
])("documents every %s variable with a comment", (_service, names) => {
  for (const name of names) {
    const line = template.findIndex((l) => new RegExp(`^(# ?)?${name}=`).test(l));
    expect(line, `${name} is missing from .env.template`).toBeGreaterThan(0);
    expect(template[line - 1], `${name} has no comment above it`).toMatch(/^#/);
  }
});
