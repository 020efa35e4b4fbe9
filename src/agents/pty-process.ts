/**
 * One program in a pseudo-terminal, over node-pty (>= 1.2.0-beta.4: older versions leak master fds
 * into later children, so one agent could type into another's terminal).
 *
 * This module is the only place that touches node-pty's internals. It isolates two workarounds
 * (docs/agents.md, ../shared/notes/pty-sandbox.md §3):
 * - Tail loss: libuv reports EOF on EPOLLHUP without a final read, so a program that writes more
 *   than ~4 KB and exits at once loses its last bytes. Before node-pty's socket ends, errors or is
 *   destroyed (its 200 ms exit timer), we read the master fd ourselves until it is empty.
 * - Signals: node-pty's kill() reaches only the direct child. Process groups and the foreground
 *   group are found here, from /proc (Linux), since node-pty does not expose tcgetpgrp.
 *
 * Data is delivered as Buffers (encoding null) in order, and every byte is delivered before `exit`.
 */
import fs from "node:fs";
import os from "node:os";
import * as pty from "node-pty";

export interface PtySpawnOptions {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  cols: number;
  rows: number;
  /** TERM; node-pty also sets it in env. */
  term: string;
  /**
   * The main process group holds only a sandbox's outer processes (bwrap and the pid namespace's
   * init), the program runs in groups of its own: graceful signals to `all` spare the outer ones.
   */
  sandboxed?: boolean;
}

/** How the program ended: node-pty's view ({exitCode: 7, signal: 0} after `exit 7`). */
export interface PtyExit {
  exitCode: number;
  /** Signal number that ended the process, 0 when none. */
  signal: number;
}

/**
 * Which processes a signal reaches:
 * - `foreground`: the terminal's foreground process group (what Ctrl-C reaches), read from the
 *   main process's /proc/<pid>/stat `tpgid`; falls back to the main process's group.
 * - `main`: only the main process (node-pty's child).
 * - `all`: every process in the terminal's session (the session id is the main pid, as forkpty
 *   calls setsid), including jobs a shell moved to their own groups. Processes that left the
 *   session (setsid, daemons) are not reached: without a sandbox, that is the limit; bwrap's PID
 *   namespace and --die-with-parent end them with the sandbox.
 *   In a sandbox (`sandboxed`), TERM, INT and HUP to `all` reach only the processes inside it:
 *   every descendant of the main process outside the main group. bwrap does not forward signals,
 *   and a TERM to it would end the sandbox at once (--die-with-parent SIGKILLs the program), so
 *   the program could not act on it. When the program is gone, the sandbox ends by itself. If no
 *   such process exists yet (just spawned, before the foreground step), every process is signalled.
 */
export type SignalTarget = "foreground" | "main" | "all";

interface NodePtyInternals {
  _socket: NodeJS.ReadableStream & {
    prependListener(event: string, fn: (...args: unknown[]) => void): void;
    destroy(err?: Error): unknown;
  };
  _fd: number;
}

const DRAIN_BUFFER_BYTES = 64 * 1024;

/** Signals a program may handle and that would end a sandbox at once if they reached bwrap. */
const GRACEFUL_SIGNALS = new Set<NodeJS.Signals>(["SIGTERM", "SIGINT", "SIGHUP"]);

export class PtyProcess {
  readonly pid: number;
  private readonly term: pty.IPty;
  private dataListener: (chunk: Buffer) => void = () => undefined;
  private exitListener: (exit: PtyExit) => void = () => undefined;
  private exitInfo: PtyExit | undefined;
  private paused = false;
  private cols: number;
  private rows: number;
  private readonly sandboxed: boolean;
  /** The child's start time (clock ticks after boot), to recognise its pid later. */
  private readonly startTime: number | undefined;

  private constructor(term: pty.IPty, cols: number, rows: number, sandboxed: boolean) {
    this.term = term;
    this.sandboxed = sandboxed;
    this.pid = term.pid;
    this.startTime = procStat(term.pid)?.startTime;
    this.cols = cols;
    this.rows = rows;
    this.installDrain();
    term.onData((d) => this.dataListener(d as unknown as Buffer));
    term.onExit(({ exitCode, signal }) => {
      this.exitInfo = { exitCode, signal: signal ?? 0 };
      this.exitListener(this.exitInfo);
    });
  }

  /**
   * Spawns the program. A missing binary does not throw: the child prints `execvp(3) failed.` and
   * exits 1 (node-pty); callers that want a clear error check the file first.
   */
  static spawn(o: PtySpawnOptions): PtyProcess {
    const term = pty.spawn(o.file, o.args, {
      name: o.term,
      cols: o.cols,
      rows: o.rows,
      cwd: o.cwd,
      env: o.env,
      encoding: null,
      // XON/XOFF from clients must reach the program, not pause our reader.
      handleFlowControl: false,
    });
    return new PtyProcess(term, o.cols, o.rows, o.sandboxed ?? false);
  }

  /** One listener (the supervisor); chunks are Buffers that the caller may keep. */
  onData(fn: (chunk: Buffer) => void): void {
    this.dataListener = fn;
  }

  /** Called once, after the last data chunk. */
  onExit(fn: (exit: PtyExit) => void): void {
    this.exitListener = fn;
    if (this.exitInfo) fn(this.exitInfo);
  }

  get exited(): boolean {
    return this.exitInfo !== undefined;
  }

  get size(): { cols: number; rows: number } {
    return { cols: this.cols, rows: this.rows };
  }

  write(data: Buffer): void {
    if (this.exitInfo || data.length === 0) return;
    // node-pty queues the bytes and writes them as the kernel buffer allows.
    this.term.write(data as unknown as string);
  }

  /** TIOCSWINSZ; the foreground process group gets SIGWINCH. */
  resize(cols: number, rows: number): void {
    if (this.exitInfo) return;
    this.term.resize(cols, rows);
    this.cols = cols;
    this.rows = rows;
  }

  /** Stops reading the terminal: once the kernel buffer is full the program blocks on write. */
  pause(): void {
    if (this.paused || this.exitInfo) return;
    this.paused = true;
    this.term.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.term.resume();
  }

  /**
   * Whether the pid is still our child. node-pty reaps the child at once but reports the exit only
   * after the terminal's socket closed, and on a host with pid_max 32768 the number can belong to a
   * new process (a new session, even) in between: the start time tells them apart.
   */
  private stillOurs(): boolean {
    const s = procStat(this.pid);
    return s !== undefined && (this.startTime === undefined || s.startTime === this.startTime);
  }

  /** Sends a signal; returns the number of processes or groups it was delivered to. */
  signal(signal: NodeJS.Signals, target: SignalTarget): number {
    if (this.exitInfo || (os.platform() === "linux" && !this.stillOurs())) return 0;
    let delivered = 0;
    const send = (id: number) => {
      try {
        process.kill(id, signal);
        delivered++;
      } catch {
        // gone meanwhile
      }
    };
    // Right after the spawn the child may not have called setsid() yet: its group does not exist,
    // so a group signal falls back to the process itself.
    const sendGroup = (pgrp: number) => {
      send(-pgrp);
      if (delivered === 0 && pgrp === this.pid) send(this.pid);
    };
    if (target === "main") {
      send(this.pid);
    } else if (target === "foreground") {
      const fg = procStat(this.pid)?.tpgid ?? -1;
      sendGroup(fg > 0 ? fg : this.pid);
    } else if (this.sandboxed && GRACEFUL_SIGNALS.has(signal) && this.signalInside(send)) {
      // delivered to the sandbox's own processes only
    } else {
      // The main group first (one syscall reaches most processes), then anything else in the session.
      sendGroup(this.pid);
      for (const p of sessionMembers(this.pid)) if (p.pgrp !== this.pid) send(p.pid);
    }
    return delivered;
  }

  /** Signals every process inside the sandbox (descendants outside the main group); false if none. */
  private signalInside(send: (pid: number) => void): boolean {
    const inside = descendants(this.pid).filter((p) => p.pgrp !== this.pid);
    for (const p of inside) send(p.pid);
    return inside.length > 0;
  }

  /**
   * The tail-loss fix. `end` (EOF on EPOLLHUP) and `error` (EIO) come before node-pty stops using
   * the fd; `destroy` is what node-pty's exit timer calls when the socket did not close by itself
   * (e.g. while paused). In each case read what the kernel still holds, synchronously, first.
   */
  private installDrain(): void {
    const internals = this.term as unknown as NodePtyInternals;
    const socket = internals._socket;
    const fd = internals._fd;
    let drained = false;
    const drain = () => {
      if (drained) return;
      drained = true;
      const buf = Buffer.allocUnsafe(DRAIN_BUFFER_BYTES);
      for (;;) {
        let n: number;
        try {
          n = fs.readSync(fd, buf, 0, buf.length, null);
        } catch {
          break; // EAGAIN (empty) or EIO (no slave left)
        }
        if (n <= 0) break;
        this.dataListener(Buffer.from(buf.subarray(0, n)));
      }
    };
    socket.prependListener("end", drain);
    socket.prependListener("error", drain);
    const destroy = socket.destroy.bind(socket);
    socket.destroy = (err?: Error) => {
      drain();
      return destroy(err);
    };
  }
}

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
  tpgid: number;
  startTime: number;
}

/** Fields of /proc/<pid>/stat; the command name may hold spaces and parentheses, so parse after the last ')'. */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // f[0] state, f[1] ppid, f[2] pgrp, f[3] session, f[4] tty_nr, f[5] tpgid, f[19] starttime
  return {
    pid,
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    session: Number(f[3]),
    tpgid: Number(f[5]),
    startTime: Number(f[19]),
  };
}

function allProcesses(): ProcStat[] {
  if (os.platform() !== "linux") return [];
  const out: ProcStat[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

function sessionMembers(sid: number): ProcStat[] {
  return allProcesses().filter((s) => s.session === sid);
}

/** Every process below `pid` (orphans inside a pid namespace are re-parented to its init, so they stay below). */
function descendants(pid: number): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const s of allProcesses()) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const out: ProcStat[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

/** Signal number -> "SIGKILL"; empty for 0 or unknown numbers. */
export function signalName(signal: number): string {
  if (!signal) return "";
  for (const [name, n] of Object.entries(os.constants.signals)) if (n === signal) return name;
  return "";
}
