// Restores lockfile entries for node-llama-cpp's platform packages that this workplace's npm
// registry does not serve (macOS, Windows, riscv64). `npm install` here drops them (404), and
// `npm ci` then refuses the lockfile. They are optional and never installed on Linux x64, so an
// entry with version, os and cpu is all npm needs. Run after any `npm install`:
//   node .ci/lockfile-optional.mjs [path/to/package-lock.json]
import { readFileSync, writeFileSync } from "node:fs";

const lockPath = process.argv[2] ?? new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, "utf8"));
const base = lock.packages["node_modules/node-llama-cpp"];
if (!base) throw new Error("node-llama-cpp is not in package-lock.json");
const platforms = {
  "linux-riscv64": ["linux", "riscv64"],
  "mac-arm64-metal": ["darwin", "arm64"],
  "mac-x64": ["darwin", "x64"],
  "win-arm64": ["win32", "arm64"],
  "win-x64": ["win32", "x64"],
  "win-x64-cuda": ["win32", "x64"],
  "win-x64-cuda-ext": ["win32", "x64"],
  "win-x64-vulkan": ["win32", "x64"],
};
let added = 0;
for (const [name, [os, cpu]] of Object.entries(platforms)) {
  const pkg = `@node-llama-cpp/${name}`;
  const version = base.optionalDependencies?.[pkg];
  const key = `node_modules/${pkg}`;
  if (!version || lock.packages[key]) continue;
  lock.packages[key] = {
    version,
    cpu: [cpu],
    license: "MIT",
    optional: true,
    os: [os],
    engines: { node: ">=20.0.0" },
  };
  added++;
}
const sorted = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) =>
    a === "" ? -1 : b === "" ? 1 : a.localeCompare(b),
  ),
);
lock.packages = sorted;
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(
  `package-lock.json: ${added} optional platform entr${added === 1 ? "y" : "ies"} restored`,
);
