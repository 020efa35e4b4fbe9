/**
 * Child processes for the benches: each server runs in its own Node process so none shares
 * an event loop with the load generator. Children are started from the repository root and
 * stopped with SIGTERM (then SIGKILL after a grace period), each by its own pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Resolves with the first stdout line (children that print their URL when ready). */
  readonly firstLine: Promise<string>;
  /** The last lines of stdout and stderr, for error messages and warnings. */
  tail(): string;
  stop(): Promise<void>;
}

export function spawnChild(name: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Child {
  const proc = spawn(process.execPath, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const keep = (l: string) => {
    lines.push(l);
    if (lines.length > 30) lines.shift();
  };
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    proc.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const firstLine = new Promise<string>((resolve, reject) => {
    let first = true;
    createInterface({ input: proc.stdout! }).on("line", (l) => {
      if (first) {
        first = false;
        resolve(l.trim());
      }
      keep(l);
    });
    void exit.then(() =>
      reject(
        new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before it printed a line\n${lines.join("\n")}`),
      ),
    );
  });
  firstLine.catch(() => undefined);
  createInterface({ input: proc.stderr! }).on("line", keep);
  return {
    name,
    proc,
    firstLine,
    tail: () => lines.join("\n"),
    async stop() {
      if (exited) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 8_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A port that was free a moment ago (agentgate's BIND needs a fixed port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Polls GET url until it answers 200; resolves with the time it took in ms. */
export async function waitHealthy(url: string, child: Child, timeoutMs = 60_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited (${child.proc.exitCode})\n${child.tail()}`);
    const status = await new Promise<number>((resolve) => {
      const req = http.get(url, { agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", () => resolve(0));
      req.setTimeout(2_000, () => req.destroy());
    });
    if (status === 200) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`${child.name} not healthy at ${url} after ${timeoutMs} ms\n${child.tail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat (Linux; clock
 * ticks of 10 ms). Undefined elsewhere or once the process is gone.
 */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = 100;

/** CPU ms used by this process (all threads). */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * A clean environment for the servers a bench starts: no AUTH_TOKEN, DATABASE_URL, RATE_LIMIT_RPM
 * or aliases leak in from the caller.
 */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ["PATH", "HOME", "TMPDIR", "LANG", "TZ"]) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}
