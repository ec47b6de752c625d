/** Facts about the machine a result came from, stored with every result. */
import { execFileSync } from "node:child_process";
import { cpus, loadavg, totalmem, type } from "node:os";

export interface MachineFacts {
  cpu: string;
  cores: number;
  memory_gib: number;
  os: string;
  node: string;
  commit: string;
  dirty: boolean;
  loadavg_at_start: number[];
  date: string;
}

function git(args: string[]): string {
  try {
    return execFileSync("git", args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "";
  }
}

export function machineFacts(): MachineFacts {
  const list = cpus();
  return {
    cpu: list[0]?.model ?? "unknown",
    cores: list.length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${process.arch}`,
    node: process.version,
    commit: git(["rev-parse", "HEAD"]) || "unknown",
    dirty: git(["status", "--porcelain", "--", "edge", "gpu-node", "db", "bench"]) !== "",
    loadavg_at_start: loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
  };
}
