/**
 * Test helper: runs a SandboxLaunch under node-pty exactly as the supervisor will, collects its
 * output and exit, and never outlives its deadline (SIGKILL to the PTY's process group: bwrap's
 * --die-with-parent then takes the whole pid namespace down).
 *
 * Output tails can be lost at exit (notes §3, node-pty#726) when a program writes more than 4 KB and
 * exits at once; the programs in these tests write a few lines, and results that matter are also
 * read from files where that is easier.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as pty from "node-pty";
import { SystemTools } from "../../src/system/system-tools.js";
import type { SandboxLaunch, SandboxSpec } from "../../src/sandbox/types.js";

export interface Exit {
  exitCode: number;
  signal: number;
}

export interface Running {
  proc: pty.IPty;
  output(): string;
  /** Resolves once the output matches `re`; rejects after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<void>;
  exit: Promise<Exit & { ms: number }>;
}

export function start(
  launch: SandboxLaunch,
  opts: { deadlineMs?: number; cols?: number; rows?: number } = {},
): Running {
  const t0 = performance.now();
  const proc = pty.spawn(launch.file, launch.args, {
    name: "xterm-256color",
    cols: opts.cols ?? 80,
    rows: opts.rows ?? 24,
    cwd: launch.cwd,
    env: launch.env,
  });
  let out = "";
  const listeners = new Set<() => void>();
  proc.onData((d) => {
    out += d;
    for (const l of listeners) l();
  });
  const killer = setTimeout(() => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      proc.kill("SIGKILL");
    }
  }, opts.deadlineMs ?? 15_000);
  const exit = new Promise<Exit & { ms: number }>((resolve) =>
    proc.onExit((e) => {
      clearTimeout(killer);
      resolve({ exitCode: e.exitCode, signal: e.signal ?? 0, ms: performance.now() - t0 });
    }),
  );
  const waitFor = (re: RegExp, ms = 10_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (re.test(out)) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out waiting for ${re}; output so far: ${JSON.stringify(out)}`));
      }, ms);
      listeners.add(check);
      check();
    });
  return { proc, output: () => out, waitFor, exit };
}

/** Runs to completion; the launch's temporary files are removed afterwards. */
export async function run(launch: SandboxLaunch, deadlineMs?: number): Promise<Exit & { output: string; ms: number }> {
  const r = start(launch, { deadlineMs });
  try {
    const e = await r.exit;
    return { ...e, output: r.output() };
  } finally {
    launch.cleanup();
  }
}

/** True when this host can run the real bwrap tests (root for setpriv, and the three tools). */
export function canRunBwrap(): boolean {
  const tools = new SystemTools();
  return process.getuid?.() === 0 && !!tools.path("bwrap") && !!tools.path("setpriv") && !!tools.path("prlimit");
}

/**
 * A scratch area whose parents the sandbox uids can traverse (mkdtemp makes 0700 directories,
 * which bwrap 0.8.0 cannot resolve after dropping to the agent's uid).
 */
export function scratch(prefix: string): { base: string; dir(name: string): string; remove(): void } {
  const base = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(base, 0o711);
  return {
    base,
    dir(name) {
      const d = path.join(base, name);
      if (!existsSync(d)) mkdirSync(d, { recursive: true });
      return d;
    },
    remove: () => rmSync(base, { recursive: true, force: true }),
  };
}

export function spec(overrides: Partial<SandboxSpec> & Pick<SandboxSpec, "argv" | "workspace">): SandboxSpec {
  return { driver: "bwrap", env: {}, network: false, limits: {}, hiddenPaths: [], ...overrides };
}

/**
 * How many live host processes run with real uid `uid`. Zombies are left out: when a sandbox's
 * pid-namespace init dies, its remaining processes are killed and reparented to the host's init,
 * which may reap them late (this VM's does); they still count for RLIMIT_NPROC until then, which
 * is why UidPool treats their uid as busy.
 */
export function processCount(uid: number): number {
  let n = 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      if (new RegExp(`^Uid:\\s+${uid}\\s`, "m").test(status) && !/^State:\s+Z/m.test(status)) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

/** Polls until `uid` has no live processes (or `ms` passes); returns the last count. */
export async function settledProcessCount(uid: number, ms = 5_000): Promise<number> {
  const end = Date.now() + ms;
  let count = processCount(uid);
  while (count > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    count = processCount(uid);
  }
  return count;
}

/**
 * The PTY's foreground process group, seen through the process `pid` on it (field 8, tpgid, of
 * /proc/<pid>/stat; the supervisor's pty-process.ts reads the same field for its "foreground"
 * signal target). Undefined once the process is gone.
 */
export function foregroundGroup(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const tpgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[5]);
  return tpgid > 0 ? tpgid : undefined;
}
