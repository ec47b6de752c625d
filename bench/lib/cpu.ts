/**
 * CPU time of a whole process group (a server and its children, all threads), from /proc: a cost
 * measure that a machine loaded by other work disturbs far less than wall time. Linux only;
 * resolution one clock tick (10 ms at the usual 100 Hz), so measure stretches of a second or more.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICK_MS = 10; // sysconf(_SC_CLK_TCK) = 100 on Linux

/** User + system milliseconds of every live process whose process group is `pgid`. */
export function processGroupCpuMs(pgid: number): number {
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
    if (Number(fields[2]) !== pgid) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * TICK_MS;
}
