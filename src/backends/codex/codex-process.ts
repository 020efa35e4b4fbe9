/**
 * One `codex exec --json` process: spawned in its own process group, so that stopping it (cancel,
 * timeout) ends everything Codex started too: Codex runs commands, MCP servers and sandboxes as its
 * children, and a signal to the leader alone would leave them running.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { readExecEvents, type ExecEvent } from "./exec-events.js";
import type { CodexCommand } from "./locate-codex.js";

export interface CodexProcessOptions {
  command: CodexCommand;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /**
   * Written to stdin, which is then closed (for prompts too long for one argv string). Without it stdin
   * is /dev/null: `codex exec` reads an open stdin pipe to EOF before doing anything, so a pipe left
   * open would block it forever.
   */
  stdin?: string;
  /** SIGTERM first; SIGKILL to the group this long after. */
  killGraceMs: number;
  /** Raw output as it arrives (jobs keep and stream it). */
  onStdout?(chunk: Buffer): void;
  onStderr?(chunk: Buffer): void;
  /** Every JSON value on stdout, before it is typed (jobs keep the raw event). */
  onJsonLine?(value: unknown): void;
}

export interface CodexExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The process could not be started (ENOENT, EACCES...). */
  spawnError?: NodeJS.ErrnoException;
}

const STDERR_KEEP_CHARS = 16 * 1024;

export class CodexProcess {
  readonly events: AsyncIterable<ExecEvent>;
  readonly exited: Promise<CodexExit>;
  private readonly child: ChildProcess;
  private stderr = "";
  private done = false;
  private killTimer: NodeJS.Timeout | undefined;
  /** Members of Codex's process group still alive when Codex itself exited. */
  private leftovers: number[] = [];

  constructor(private readonly opts: CodexProcessOptions) {
    this.child = spawn(opts.command.command, [...opts.command.prefix, ...opts.args], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      // Own process group (setsid): the group id is the child's pid, and -pid signals all of it.
      detached: true,
    });
    if (opts.stdin !== undefined) {
      this.child.stdin!.on("error", () => undefined); // EPIPE when Codex exits early; its exit status says why
      this.child.stdin!.end(opts.stdin);
    }
    const stderrText = new StringDecoder("utf8");
    this.child.stderr!.on("data", (chunk: Buffer) => {
      opts.onStderr?.(chunk);
      this.stderr = (this.stderr + stderrText.write(chunk)).slice(-STDERR_KEEP_CHARS);
    });
    this.exited = new Promise((resolve) => {
      this.child.once("error", (err: NodeJS.ErrnoException) => {
        if (this.child.pid === undefined) resolve({ code: null, signal: null, spawnError: err });
      });
      this.child.once("exit", (code, signal) => {
        this.done = true;
        // Whatever Codex left behind in its group (a command still running, a stuck helper) goes with it;
        // it would also hold stdout open and keep the event stream from ending. From here on the group
        // id is no longer held by the leader: once the last member is gone the kernel may hand the
        // number to a new process (pid_max is 32768 on some hosts), so later signals go to the
        // members found now, one by one, and only while they are still in the group.
        this.leftovers = groupMembers(this.child.pid!);
        if (this.leftovers.length) {
          this.signalLeftovers("SIGTERM");
          this.scheduleKill();
        } else {
          clearTimeout(this.killTimer);
        }
        resolve({ code, signal });
      });
    });
    this.events = this.readEvents(this.child.stdout!);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** What Codex wrote to stderr (the last 16 KiB). */
  get stderrText(): string {
    return this.stderr;
  }

  /** SIGTERM to the whole group, SIGKILL after the grace period; resolves once the leader has exited. */
  async stop(): Promise<void> {
    if (!this.done) {
      this.signalGroup("SIGTERM");
      this.scheduleKill();
    }
    await this.exited;
  }

  private scheduleKill(): void {
    if (this.killTimer) return;
    this.killTimer = setTimeout(
      () => (this.done ? this.signalLeftovers("SIGKILL") : this.signalGroup("SIGKILL")),
      this.opts.killGraceMs,
    );
    this.killTimer.unref();
  }

  private signalLeftovers(signal: NodeJS.Signals): void {
    const group = this.child.pid!;
    for (const pid of this.leftovers) {
      if (processGroupOf(pid) !== group) continue;
      try {
        process.kill(pid, signal);
      } catch {
        // gone meanwhile
      }
    }
  }

  /** Signals every process in the group (0: only checks); false when the group is empty. */
  private signalGroup(signal: NodeJS.Signals | 0): boolean {
    const pid = this.child.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, signal);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EPERM";
    }
  }

  private async *readEvents(stdout: Readable): AsyncIterable<ExecEvent> {
    const { onStdout, onJsonLine } = this.opts;
    const chunks = onStdout ? tap(stdout, onStdout) : stdout;
    try {
      yield* readExecEvents(chunks, onJsonLine);
    } catch {
      // The stream was destroyed (the process could not start or was killed): the exit status tells why.
    }
  }
}

async function* tap(stream: Readable, fn: (chunk: Buffer) => void): AsyncIterable<Buffer> {
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    fn(chunk);
    yield chunk;
  }
}

/** The process group of a pid (/proc/<pid>/stat field 5), undefined when it is gone. */
function processGroupOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return undefined;
  }
}

/**
 * Pids left in process group `pgid` after its leader was reaped (Linux /proc; empty elsewhere). If a
 * process with the leader's pid exists again, the number was reused: nothing of ours is left.
 */
export function groupMembers(pgid: number): number[] {
  // The usual case (nothing left) costs one syscall, not a scan of /proc.
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return [];
  }
  if (fs.existsSync(`/proc/${pgid}`)) return [];
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return [];
  }
  return names.filter((n) => /^\d+$/.test(n) && processGroupOf(Number(n)) === pgid).map(Number);
}
