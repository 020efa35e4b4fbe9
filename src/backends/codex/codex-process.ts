/**
 * One `codex exec --json` process: spawned in its own process group, so that stopping it (cancel,
 * timeout) ends everything Codex started too: Codex runs commands, MCP servers and sandboxes as its
 * children, and a signal to the leader alone would leave them running.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { readJsonLines, toExecEvent, type ExecEvent } from "./exec-events.js";
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
        // it would also hold stdout open and keep the event stream from ending.
        if (this.signalGroup(0)) {
          this.signalGroup("SIGTERM");
          this.scheduleKill();
        } else {
          // Nothing left: no SIGKILL later, when the id could belong to someone else's group.
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
    this.killTimer = setTimeout(() => this.signalGroup("SIGKILL"), this.opts.killGraceMs);
    this.killTimer.unref();
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
      for await (const value of readJsonLines(chunks)) {
        onJsonLine?.(value);
        const event = toExecEvent(value);
        if (event) yield event;
      }
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
