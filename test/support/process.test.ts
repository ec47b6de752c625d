import { describe, expect, it } from "vitest";
import { startProcess, waitFor } from "./process.ts";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const pidsOf = (text: string) => text.trim().split(/\s+/).map(Number);

describe("the process helper", () => {
  it("stop() ends the whole group, not only its leader", async () => {
    const proc = startProcess("sh", ["-c", 'sleep 600 & echo "$!"; wait']);
    const [sleepPid] = pidsOf(await waitFor(() => proc.stdout().trim(), "the sleep's pid", 10_000));
    expect(alive(sleepPid as number)).toBe(true);
    const exit = await proc.stop();
    expect(exit.signal ?? exit.code).toBeTruthy();
    await waitFor(() => !alive(sleepPid as number), "the sleep to be gone", 10_000);
  });

  it("fails a wait at once, with the output, when the process exits", async () => {
    const proc = startProcess("sh", ["-c", "echo the-reason >&2; exit 4"]);
    await expect(waitFor(() => false, "never", 30_000, proc)).rejects.toThrow(
      /exited \(4\)[\s\S]*the-reason/,
    );
  });

  it.each(["wait", "exit", "throw"])(
    "a parent that ends (%s) leaves no process of its groups behind",
    async (how) => {
      // node --import tsx, not the tsx CLI: its signal relay SIGKILLs a child that is slow to
      // answer, and a SIGKILLed parent can run no hook at all.
      const parent = startProcess(process.execPath, [
        "--import",
        "tsx",
        "test/support/fixtures/parent-of-a-group.ts",
        how,
      ]);
      const line = await waitFor(() => parent.stdout().trim(), "the group's pids", 30_000, parent);
      const pids = pidsOf(line);
      expect(pids).toHaveLength(2);
      for (const pid of pids) expect(alive(pid)).toBe(true);
      // As `timeout` or Ctrl-C does: the parent's own group gets the signal, the one it started not.
      if (how === "wait") process.kill(-(parent.child.pid as number), "SIGTERM");
      await parent.exited;
      await waitFor(() => pids.every((pid) => !alive(pid)), "the group to be gone", 10_000);
    },
  );
});
