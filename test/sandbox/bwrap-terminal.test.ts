/**
 * Terminal behaviour through node-pty and the real bwrap: exit codes, SIGWINCH after resize,
 * Ctrl-C reaching only the program's foreground group (bwrap survives it), an interactive
 * job-control shell, and the supervisor's signals via the foreground process group.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SystemTools } from "../../src/system/system-tools.js";
import { BwrapDriver } from "../../src/sandbox/bwrap-driver.js";
import type { SandboxLaunch } from "../../src/sandbox/types.js";
import { UidPool } from "../../src/sandbox/uid-pool.js";
import { canRunBwrap, foregroundGroup, run, scratch, spec, start } from "./pty-run.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!canRunBwrap())("bwrap sandbox: terminal (real bwrap under node-pty)", () => {
  const area = scratch("agentgate-sbx-tty-");
  const driver = new BwrapDriver(new SystemTools());
  const pool = new UidPool({ first: 233000, last: 233999 });
  const uids: number[] = [];
  let n = 0;
  afterAll(() => {
    uids.forEach((u) => pool.release(u));
    area.remove();
  });

  function prepare(argv: string[]): SandboxLaunch & { workspace: string } {
    const uid = pool.acquire();
    uids.push(uid);
    const workspace = area.dir(`ws-${n++}`);
    return { ...driver.prepare(spec({ argv, workspace, uid })), workspace };
  }

  it("keeps the program's exit code and reports a program killed by a signal as 128+N", async () => {
    expect((await run(prepare(["sh", "-c", "exit 4"]))).exitCode).toBe(4);
    expect((await run(prepare(["sh", "-c", "kill -TERM $$"]))).exitCode).toBe(143);
    const missing = await run(prepare(["no-such-program"]));
    expect(missing.exitCode).toBe(127);
    expect(missing.output).toContain("no-such-program: No such file or directory");
  });

  it("SIGWINCH reaches the program after pty.resize, with the new size", async () => {
    const py = [
      "import os, signal, time",
      "got = []",
      "signal.signal(signal.SIGWINCH, lambda *a: got.append(1))",
      "print('ready', flush=True)",
      "while not got: time.sleep(0.02)",
      "s = os.get_terminal_size(0)",
      "print('winch', s.columns, s.lines, flush=True)",
      "time.sleep(0.2)",
    ].join("\n");
    const launch = prepare(["python3", "-c", py]);
    const r = start(launch);
    await r.waitFor(/ready/);
    r.proc.resize(123, 45);
    await r.waitFor(/winch 123 45/);
    expect((await r.exit).exitCode).toBe(0);
    launch.cleanup();
  });

  it("Ctrl-C interrupts the foreground command only: the shell traps it and goes on, bwrap survives", async () => {
    const launch = prepare(["sh", "-c", 'trap "echo caught" INT; echo ready; sleep 30; echo after; sleep 0.2; exit 4']);
    const r = start(launch);
    await r.waitFor(/ready/);
    await sleep(200);
    r.proc.write("\x03");
    const e = await r.exit;
    launch.cleanup();
    expect(r.output()).toMatch(/caught\r\nafter/);
    expect(e).toMatchObject({ exitCode: 4, signal: 0 });
    expect(e.ms).toBeLessThan(10_000);
  });

  it("Ctrl-C ends a program that does not handle it, and the exit says so (130)", async () => {
    const launch = prepare(["sh", "-c", "echo ready; sleep 30; echo after"]);
    const r = start(launch);
    await r.waitFor(/ready/);
    await sleep(200);
    r.proc.write("\x03");
    const e = await r.exit;
    launch.cleanup();
    expect(r.output()).not.toContain("after");
    expect(e).toMatchObject({ exitCode: 130, signal: 0 });
  });

  it("an interactive job-control shell: Ctrl-C stops the job, the shell lives on and its exit code is kept", async () => {
    const launch = prepare(["sh", "-i"]);
    const r = start(launch);
    await r.waitFor(/\$ $/);
    r.proc.write("sleep 30; echo after\n");
    await sleep(500);
    r.proc.write("\x03");
    await sleep(300);
    r.proc.write("echo alive-$((20+22)); exit 4\n");
    const e = await r.exit;
    launch.cleanup();
    expect(r.output()).toContain("alive-42");
    expect(r.output().match(/after/g)).toHaveLength(1); // only the echo of the typed line
    expect(r.output()).not.toContain("Cannot set tty process group");
    expect(e).toMatchObject({ exitCode: 4, signal: 0 });
  });

  it("the supervisor can pause, resume and terminate the program through the foreground process group", async () => {
    const launch = prepare([
      "sh",
      "-c",
      'trap "echo term; exit 7" TERM; i=0; while :; do i=$((i+1)); echo $i > /workspace/count; sleep 0.05; done',
    ]);
    const count = () => Number(readFileSync(path.join(launch.workspace, "count"), "utf8").trim() || 0);
    const r = start(launch);
    await sleep(500);
    const pgrp = foregroundGroup(r.proc.pid)!;
    expect(pgrp).toBeGreaterThan(0);
    expect(pgrp).not.toBe(r.proc.pid); // the program's own group, not bwrap's

    process.kill(-pgrp, "SIGSTOP");
    await sleep(200);
    const frozen = count();
    await sleep(400);
    expect(count()).toBe(frozen);

    process.kill(-pgrp, "SIGCONT");
    await sleep(400);
    expect(count()).toBeGreaterThan(frozen);

    process.kill(-pgrp, "SIGTERM"); // bwrap is not in this group: the program's trap runs and its code is kept
    const e = await r.exit;
    launch.cleanup();
    // Exit code 7 is the trap's: the program handled SIGTERM itself. (Its last output line can be
    // lost at exit here: this raw node-pty helper does not drain the master fd as the supervisor does.)
    expect(e).toMatchObject({ exitCode: 7, signal: 0 });
  });
});
