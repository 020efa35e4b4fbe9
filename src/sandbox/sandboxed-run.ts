/**
 * One short sandboxed run on pipes: the program gets `stdin` (then EOF), its stdout is collected up
 * to a cap and its exit is reported; nothing it started outlives the call. Made for endpoint
 * handlers (one JSON document in, JSON out, once per HTTP call), but nothing here knows about JSON.
 *
 * The launch is the drivers' (bwrap-driver.ts, none-driver.ts) with `terminal: false` and never any
 * network. It is spawned with pipes in a process group of its own (`detached`: setsid), so the
 * timeout, the stdout cap and an abort SIGKILL the whole group at once: under bwrap that group is
 * the outer bwrap (the launch shell, setpriv and prlimit all exec into it) and everything in the
 * sandbox that did not leave it; --die-with-parent takes the rest of the pid namespace down with
 * bwrap. As root every run takes its own uid from the pool, as job-runner does (so RLIMIT_NPROC is
 * per run), and once the launcher has exited every process of that uid is SIGKILLed before the uid
 * goes back to the pool.
 *
 * bwrap reports a program killed by signal N as exit code 128 + N; that is reported here as the
 * signal (so a program that really exits with 137 reads as SIGKILL).
 */
import { spawn } from "node:child_process";
import { chmodSync, realpathSync, statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import path from "node:path";
import { GatewayError } from "../errors/gateway-error.js";
import type { SystemTools } from "../system/system-tools.js";
import type { BwrapDriverOptions } from "./bwrap-driver.js";
import { sandboxDriver } from "./drivers.js";
import type { ProcessLimits, SandboxDriver, SandboxDriverName, SandboxLaunch } from "./types.js";
import { killUidProcesses, type UidPool } from "./uid-pool.js";

export const DEFAULT_MAX_STDERR_BYTES = 64 * 1024;

/**
 * A working RLIMIT_AS for Node 20 handlers. RLIMIT_AS caps reservations, not use, and V8 reserves
 * far more than it uses. Measured under bwrap on x86-64 (node 20.20): at 512 MiB node does not
 * start ("Failed to reserve virtual memory for CodeRange", SIGTRAP) and at 128 MiB it hung until
 * killed; at 1 GiB it starts but dies of heap OOM (SIGABRT) at ~60 MB of JS heap and cannot
 * allocate a 512 MiB Buffer; at 2 GiB the JS heap reaches ~1 GB, at 4 GiB ~3 GB. V8's
 * heap_size_limit (~4 GB here) does not follow the rlimit, so a heap-hungry handler dies with
 * SIGABRT rather than a JS exception (pass --max-old-space-size to node for a tighter heap).
 * WebAssembly needs 10-12 GiB (guard regions): below that `new WebAssembly.Memory()` and undici's
 * wasm HTTP parser behind fetch() fail with "could not allocate memory".
 */
export const NODE_ADDRESS_SPACE_BYTES = 2 * 1024 * 1024 * 1024;

/**
 * How long to wait, after the launcher has exited and its group and uid were killed, for stdout and
 * stderr to close before giving up on them (only something that left both, possible with the "none"
 * driver, can hold them open that long).
 */
const CLOSE_GRACE_MS = 1000;

export interface SandboxedRunSpec {
  /** "bwrap" or "none"; "nsjail" fails with the driver's failed_precondition. */
  driver: SandboxDriverName;
  /** The program and its arguments (argv[0] looked up on PATH inside the sandbox), never a shell string. */
  argv: string[];
  /** Host directory, the program's writable cwd (`/workspace` under bwrap, chowned to the run's uid). */
  workspace: string;
  /** Written, then closed. EPIPE from a program that does not read it all is not an error. */
  stdin: string | Uint8Array;
  /** The program's environment (the sandbox clears the rest); LANG defaults to C.UTF-8. */
  env?: Record<string, string>;
  limits: ProcessLimits;
  /** Wall clock from the spawn; then the whole group (and the run's uid) is SIGKILLed. */
  timeoutMs: number;
  /** More stdout than this: the run is killed, outputLimitExceeded, stdout keeps the first bytes. */
  maxStdoutBytes: number;
  /** Stderr kept (the first bytes; the rest is discarded, not fatal). Default 64 KiB. */
  maxStderrBytes?: number;
  /** As SandboxSpec.hiddenPaths (ignored by the "none" driver). */
  hiddenPaths: string[];
  /** As SandboxSpec.readOnlyPaths (ignored by the "none" driver). */
  readOnlyPaths?: string[];
}

export interface SandboxedRunResult {
  /** The program's exit code; null when it was killed by a signal. */
  exitCode: number | null;
  /** The signal that ended it ("SIGXCPU", "SIGKILL", "SIGSEGV" ...), also when bwrap reported it as 128+N. */
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  outputLimitExceeded: boolean;
  aborted: boolean;
  /** At most maxStdoutBytes. */
  stdout: Buffer;
  /** At most maxStderrBytes, decoded as UTF-8 (a character cut at the cap becomes U+FFFD). */
  stderr: string;
  /** From the spawn until the process had exited and its output was closed. */
  durationMs: number;
  /** The sandbox uid the run had (bwrap as root), for diagnostics. */
  uid?: number;
}

export interface SandboxedRunnerOptions {
  tools: SystemTools;
  uidPool: UidPool;
  driverOptions?: BwrapDriverOptions;
}

export class SandboxedRunner {
  private readonly drivers = new Map<SandboxDriverName, SandboxDriver>();

  constructor(private readonly o: SandboxedRunnerOptions) {}

  /**
   * Runs the program once. Rejects only when it cannot be started (the driver's GatewayError from
   * prepare(), a spawn failure, bad numbers in the spec); everything the program does is in the result.
   */
  async run(spec: SandboxedRunSpec, signal?: AbortSignal): Promise<SandboxedRunResult> {
    checkNumbers(spec);
    const driver = this.driver(spec.driver);
    if (signal?.aborted) return { ...emptyResult(), aborted: true };
    let uid: number | undefined;
    let launch: SandboxLaunch | undefined;
    const reapUid = () => (uid === undefined ? Promise.resolve(true) : killUidProcesses(uid));
    try {
      // As root bwrap needs a uid of its own (RLIMIT_NPROC only counts for a non-root uid); as any
      // other user the sandbox runs as that user.
      if (spec.driver === "bwrap" && process.getuid?.() === 0) {
        uid = this.o.uidPool.acquire();
        searchableParent(spec.workspace);
      }
      launch = driver.prepare({
        driver: spec.driver,
        argv: spec.argv,
        workspace: spec.workspace,
        env: { LANG: "C.UTF-8", ...spec.env },
        network: false,
        limits: spec.limits,
        hiddenPaths: spec.hiddenPaths,
        readOnlyPaths: spec.readOnlyPaths,
        uid,
        terminal: false,
      });
      const result = await execute(launch, spec, signal, reapUid);
      return uid === undefined ? result : { ...result, uid };
    } finally {
      try {
        await reapUid();
      } finally {
        launch?.cleanup();
        // Safe even if something survived: the pool never hands out a uid that still owns processes.
        if (uid !== undefined) this.o.uidPool.release(uid);
      }
    }
  }

  private driver(name: SandboxDriverName): SandboxDriver {
    let d = this.drivers.get(name);
    if (!d) {
      d = sandboxDriver(name, this.o.tools, this.o.driverOptions);
      this.drivers.set(name, d);
    }
    return d;
  }
}

/**
 * Spawns the launch and settles once it has exited and its stdout and stderr are closed.
 * `afterExit` kills whatever of the run is left outside the process group (the run's uid).
 */
function execute(
  launch: SandboxLaunch,
  spec: SandboxedRunSpec,
  abort: AbortSignal | undefined,
  afterExit: () => Promise<unknown>,
): Promise<SandboxedRunResult> {
  const maxStdout = spec.maxStdoutBytes;
  const maxStderr = spec.maxStderrBytes ?? DEFAULT_MAX_STDERR_BYTES;
  const bwrap = spec.driver === "bwrap";
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(launch.file, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      stdio: ["pipe", "pipe", "pipe"],
      // Own process group (setsid): the group id is the child's pid, and -pid signals all of it.
      detached: true,
    });
    let settled = false;
    let exited = false;
    let timedOut = false;
    let outputLimitExceeded = false;
    let aborted = false;
    const out: Buffer[] = [];
    let outBytes = 0;
    const err: Buffer[] = [];
    let errBytes = 0;
    let closeTimer: NodeJS.Timeout | undefined;

    // Only while the leader lives: after it was reaped its pid may in principle name another group.
    const killGroup = () => {
      if (exited || child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      if (exited) return;
      timedOut = true;
      killGroup();
    }, spec.timeoutMs);
    const onAbort = () => {
      if (exited) return;
      aborted = true;
      killGroup();
    };
    abort?.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      clearTimeout(closeTimer);
      abort?.removeEventListener("abort", onAbort);
    };

    child.stdout!.on("data", (chunk: Buffer) => {
      if (outputLimitExceeded) return;
      const room = maxStdout - outBytes;
      if (chunk.length > room) {
        if (room > 0) out.push(chunk.subarray(0, room));
        outBytes = maxStdout;
        outputLimitExceeded = true;
        killGroup();
        return;
      }
      out.push(chunk);
      outBytes += chunk.length;
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      const room = maxStderr - errBytes;
      if (room <= 0) return;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      err.push(kept);
      errBytes += kept.length;
    });
    // EPIPE (or ECONNRESET) when the program exits without reading all of stdin: its exit says why.
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(typeof spec.stdin === "string" ? spec.stdin : Buffer.from(spec.stdin));

    child.once("error", (e: NodeJS.ErrnoException) => {
      if (child.pid !== undefined || settled) return; // a failed kill(), not a failed spawn
      settled = true;
      done();
      reject(
        new GatewayError("failed_precondition", `cannot start ${launch.file}: ${e.message}`, {
          code: "sandbox_spawn_failed",
          cause: e,
        }),
      );
    });
    child.once("exit", () => {
      // Group members left behind (the "none" driver: a background child holding stdout) go now,
      // before the pid can be reused: the group keeps it allocated while any member lives.
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // nothing left
      }
      exited = true;
      void afterExit()
        .catch(() => undefined)
        .finally(() => {
          // Something that left the group and the uid can still hold the pipes: stop waiting for it.
          closeTimer = setTimeout(() => {
            child.stdout!.destroy();
            child.stderr!.destroy();
          }, CLOSE_GRACE_MS);
          closeTimer.unref();
        });
    });
    child.once("close", (code: number | null, sig: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      done();
      let exitCode = code;
      let signal = sig;
      if (bwrap && code !== null && code > 128) {
        const name = signalName(code - 128);
        if (name) {
          exitCode = null;
          signal = name;
        }
      }
      resolve({
        exitCode,
        signal,
        timedOut,
        outputLimitExceeded,
        aborted,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString("utf8"),
        durationMs: performance.now() - t0,
      });
    });
  });
}

/**
 * The sandbox uid must be able to search the workspace's parent (bwrap resolves the bind source
 * after dropping to it); like job-runner, the parent gets o+x when it lacks it. Higher directories
 * are left alone: the driver's check names any that is not searchable.
 */
function searchableParent(workspace: string): void {
  let parent: string;
  try {
    parent = path.dirname(realpathSync(workspace));
  } catch {
    return; // prepare() reports a missing workspace
  }
  const mode = statSync(parent).mode & 0o7777;
  if ((mode & 0o001) === 0) chmodSync(parent, mode | 0o001);
}

function checkNumbers(spec: SandboxedRunSpec): void {
  const check = (name: string, value: number | undefined, min: number) => {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < min)) {
      throw new GatewayError("invalid_argument", `${name} must be an integer of at least ${min}, got ${value}`, {
        param: name,
      });
    }
  };
  check("timeoutMs", spec.timeoutMs, 1);
  check("maxStdoutBytes", spec.maxStdoutBytes, 0);
  check("maxStderrBytes", spec.maxStderrBytes, 0);
}

function emptyResult(): SandboxedRunResult {
  return {
    exitCode: null,
    signal: null,
    timedOut: false,
    outputLimitExceeded: false,
    aborted: false,
    stdout: Buffer.alloc(0),
    stderr: "",
    durationMs: 0,
  };
}

function signalName(n: number): NodeJS.Signals | undefined {
  return (Object.entries(osConstants.signals) as [NodeJS.Signals, number][]).find(([, v]) => v === n)?.[0];
}
