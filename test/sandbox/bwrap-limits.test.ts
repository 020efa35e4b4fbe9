/**
 * Resource limits inside the real bwrap sandbox: each hostile program is stopped by its limit.
 * The fork bomb is kept safe for the host three ways: RLIMIT_NPROC on the agent's own uid, the pid
 * namespace with --die-with-parent (killing bwrap kills every process in it), and the helper's
 * deadline, which SIGKILLs the PTY's process group.
 */
import { statSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SystemTools } from "../../src/system/system-tools.js";
import { BwrapDriver } from "../../src/sandbox/bwrap-driver.js";
import type { ProcessLimits } from "../../src/sandbox/types.js";
import { UidPool } from "../../src/sandbox/uid-pool.js";
import { canRunBwrap, processCount, run, scratch, settledProcessCount, spec, start } from "./pty-run.js";

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!canRunBwrap())("bwrap sandbox: limits (real bwrap under node-pty)", () => {
  const area = scratch("agentgate-sbx-lim-");
  const driver = new BwrapDriver(new SystemTools());
  const pool = new UidPool({ first: 232000, last: 232999 });
  let n = 0;
  afterAll(() => area.remove());

  async function limited(argv: string[], limits: ProcessLimits, deadlineMs?: number) {
    const uid = pool.acquire();
    const workspace = area.dir(`ws-${n++}`);
    try {
      return { uid, workspace, ...(await run(driver.prepare(spec({ argv, workspace, uid, limits })), deadlineMs)) };
    } finally {
      pool.release(uid);
    }
  }

  const HOG =
    "try:\n    b = bytearray(512 << 20); b[-1] = 1; print('allocated')\nexcept MemoryError:\n    print('MemoryError')";

  it("a memory hog hits the address-space limit (and succeeds without it)", async () => {
    const r = await limited(["python3", "-c", HOG], { addressSpaceBytes: 256 * MiB });
    expect(r.output).toContain("MemoryError");
    const control = await limited(["python3", "-c", HOG], {});
    expect(control.output).toContain("allocated");
  });

  it("process creation stops at the process limit", async () => {
    const py = [
      "import os, time",
      "n = 0",
      "try:",
      "    while n < 1000:",
      "        if os.fork() == 0:",
      "            time.sleep(3); os._exit(0)",
      "        n += 1",
      "except OSError as e:",
      "    print('forks', n, 'errno', e.errno)",
    ].join("\n");
    const r = await limited(["python3", "-c", py], { processes: 32 });
    const m = /forks (\d+) errno (\d+)/.exec(r.output);
    expect(m, r.output).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(32); // bwrap's two processes count too
    expect(Number(m![2])).toBe(11); // EAGAIN
    expect(await settledProcessCount(r.uid)).toBe(0); // the children died with the namespace
  });

  it("a fork bomb stays at the process limit and dies with the sandbox", { timeout: 30_000 }, async () => {
    // Every process forks until a shared deadline and retries when fork fails, so it presses on the
    // limit the whole time (a dash `b() { b | b & }` bomb gives up on its first failed fork). The
    // deadline bounds the damage even if every other safety net were broken.
    const bomb =
      "import os, time\nend = time.time() + 4\nwhile time.time() < end:\n    try:\n        os.fork()\n    except OSError:\n        pass\nos._exit(0)";
    const limit = 48;
    const uid = pool.acquire();
    try {
      const launch = driver.prepare(
        spec({ argv: ["python3", "-c", bomb], workspace: area.dir("ws-bomb"), uid, limits: { processes: limit } }),
      );
      // Never start the bomb unless it will run under its own uid with the process limit: as root,
      // RLIMIT_NPROC does not apply and the bomb would fill the host's pid space.
      expect(launch.args).toContain(`--reuid=${uid}`);
      expect(launch.args).toContain(`--nproc=${limit}`);
      const r = start(launch, { deadlineMs: 20_000 });
      let peak = 0;
      for (let i = 0; i < 20 && peak <= limit; i++) {
        await sleep(100);
        peak = Math.max(peak, processCount(uid));
      }
      r.proc.kill("SIGKILL"); // bwrap; --die-with-parent takes the pid namespace with it
      await r.exit;
      launch.cleanup();
      expect(peak).toBeGreaterThan(limit - 8); // it did run, up to the limit
      expect(peak).toBeLessThanOrEqual(limit);
      expect(await settledProcessCount(uid)).toBe(0);
    } finally {
      pool.release(uid);
    }
  });

  it("a CPU spinner is killed at its CPU-seconds limit", async () => {
    const r = await limited(["sh", "-c", "while :; do :; done"], { cpuSeconds: 1 }, 20_000);
    // SIGXCPU at the soft limit (128+24), or SIGKILL at the hard one (128+9).
    expect([152, 137]).toContain(r.exitCode);
    expect(r.ms).toBeLessThan(10_000);
  });

  it("a disk filler is stopped at the file-size limit", async () => {
    const r = await limited(["sh", "-c", "head -c 20000000 /dev/zero > /workspace/big; echo rc=$?; sleep 0.2"], {
      fileSizeBytes: 1 * MiB,
    });
    expect(r.output).toContain("rc=153"); // SIGXFSZ
    expect(statSync(path.join(r.workspace, "big")).size).toBe(1 * MiB);
  });

  it("open files stop at the open-files limit", async () => {
    const py =
      "fs = []\ntry:\n    while True: fs.append(open('/dev/null'))\nexcept OSError as e:\n    print('opened', len(fs), 'errno', e.errno)";
    const r = await limited(["python3", "-c", py], { openFiles: 32 });
    const m = /opened (\d+) errno (\d+)/.exec(r.output);
    expect(m, r.output).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(32);
    expect(Number(m![2])).toBe(24); // EMFILE
  });
});
