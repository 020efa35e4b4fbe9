/**
 * One agent whose process runs on this replica: its terminal, its output log, its watch rules, its
 * clocks (wall and idle time) and its subscribers. It knows nothing about storage or the API: it
 * changes `record` and calls `changed` so the supervisor can persist it.
 */
import { GatewayError } from "../errors/gateway-error.js";
import type { SandboxLaunch } from "../sandbox/types.js";
import { OutputCoalescer } from "./output-coalescer.js";
import type { OutputLog, LogRange } from "./output-log.js";
import { signalName, type PtyExit, type PtyProcess, type SignalTarget } from "./pty-process.js";
import { notice, Subscription, type SubscribeOptions, type SubscriptionHost } from "./subscription.js";
import type { AgentNotice, AgentRecord, AgentSignal, ExitReason, ExitStatus, TerminalSize } from "./types.js";
import { validateSize } from "./validate.js";
import { WatchRuleMatcher, type WatchMatch } from "./watch-rules.js";

/** Where a signal goes when the caller does not say (proto AgentSignalTarget UNSPECIFIED). */
export const DEFAULT_TARGET: Record<AgentSignal, SignalTarget> = {
  INT: "foreground",
  QUIT: "foreground",
  KILL: "all",
  TERM: "all",
  HUP: "all",
  STOP: "all",
  CONT: "all",
  USR1: "main",
  USR2: "main",
};

const TERMINATING = new Set<AgentSignal>(["INT", "TERM", "KILL", "HUP", "QUIT"]);

export interface LiveAgentDeps {
  record: AgentRecord;
  proc: PtyProcess;
  log: OutputLog;
  launch: SandboxLaunch;
  /** Called after every change of `record` worth persisting; `urgent` for state changes. */
  changed(urgent: boolean): void;
  /** Called once after the exit has been recorded and every resource released. */
  ended(): void;
}

function describeMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export class LiveAgent implements SubscriptionHost {
  readonly record: AgentRecord;
  readonly log: OutputLog;
  private readonly proc: PtyProcess;
  private readonly deps: LiveAgentDeps;
  private readonly watch: WatchRuleMatcher;
  private readonly coalescer = new OutputCoalescer((chunk) => this.onOutput(chunk));
  private readonly subs = new Set<Subscription>();
  /** Subscriptions with the pause-agent policy that are behind: the terminal is not read meanwhile. */
  private readonly holders = new Set<Subscription>();
  /** Why we are ending it, when we are (recorded before the signal, reported at exit). */
  private ending: { reason: ExitReason; message: string } | undefined;
  private clientSignaled = false;
  private wallTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActivity = Date.now();
  private exitResolve!: () => void;
  /** Resolves once the exit is recorded. */
  readonly done = new Promise<void>((resolve) => (this.exitResolve = resolve));

  constructor(deps: LiveAgentDeps) {
    this.deps = deps;
    this.record = deps.record;
    this.proc = deps.proc;
    this.log = deps.log;
    this.watch = new WatchRuleMatcher(this.record.watchRules);
    this.proc.onData((chunk) => this.coalescer.push(chunk));
    this.proc.onExit((e) => this.onExit(e));
    const { wallTimeMs, idleTimeMs } = this.record.limits;
    if (wallTimeMs) {
      this.wallTimer = setTimeout(
        () => this.end("wall_time_limit", `wall time limit of ${describeMs(wallTimeMs)} reached`, "KILL"),
        wallTimeMs,
      );
    }
    if (idleTimeMs) this.armIdle(idleTimeMs);
  }

  get exited(): boolean {
    return this.record.state === "exited";
  }

  // --- SubscriptionHost ---

  get logStart(): number {
    return this.log.start;
  }

  get logEnd(): number {
    return this.log.end;
  }

  readLog(since: number, maxBytes: number): LogRange {
    return this.log.read(since, maxBytes);
  }

  get exit(): ExitStatus | undefined {
    return this.record.exit;
  }

  input(data: Buffer): number {
    this.checkRunning("input");
    this.proc.write(data);
    this.record.inputBytes += data.length;
    this.touch();
    this.deps.changed(false);
    return data.length;
  }

  resize(size: TerminalSize, from?: Subscription): TerminalSize {
    validateSize(size);
    this.checkRunning("resize");
    this.proc.resize(size.cols, size.rows);
    this.record.size = { ...size };
    this.broadcast(notice("resized", `terminal resized to ${size.cols}x${size.rows}`, { size }), from);
    this.deps.changed(true);
    return this.record.size;
  }

  signal(sig: AgentSignal, target?: SignalTarget): void {
    this.checkRunning("signal");
    if (TERMINATING.has(sig)) this.clientSignaled = true;
    this.proc.signal(`SIG${sig}`, target ?? DEFAULT_TARGET[sig]);
    if (sig === "STOP") this.setPaused(true, "", "paused by SIGSTOP");
    if (sig === "CONT") this.setPaused(false, "", "resumed by SIGCONT");
  }

  holdOutput(sub: Subscription, hold: boolean): void {
    if (hold) {
      if (this.holders.size === 0) {
        this.proc.pause();
        this.broadcast(
          notice(
            "flow_control_paused",
            "a client that asked for flow control fell behind; output resumes when it catches up",
          ),
        );
      }
      this.holders.add(sub);
    } else if (this.holders.delete(sub) && this.holders.size === 0) {
      this.proc.resume();
    }
  }

  detach(sub: Subscription): void {
    if (!this.subs.delete(sub)) return;
    this.holdOutput(sub, false);
    this.record.attachedClients = this.subs.size;
    if (!this.exited) this.broadcast(clientsNotice(this.subs.size, "a client detached"));
  }

  // --- for the supervisor ---

  subscribe(opts: SubscribeOptions): Subscription {
    if (opts.overflow === "pause-agent" && opts.mode === "read-only")
      throw new GatewayError("permission_denied", "the PAUSE_AGENT overflow policy needs a read-write attach");
    const sub = new Subscription(this, { ...this.record, size: { ...this.record.size } }, opts);
    if (!this.exited) {
      this.broadcast(clientsNotice(this.subs.size + 1, "a client attached"));
      this.subs.add(sub);
      this.record.attachedClients = this.subs.size;
    }
    return sub;
  }

  /**
   * Ends the agent with `reason`: `signal` to every process, and for TERM a KILL after `graceMs`.
   * A stopped agent gets CONT so it can act on TERM.
   */
  end(reason: ExitReason, message: string, signal: "TERM" | "KILL", graceMs = 0): Promise<void> {
    if (this.exited) return this.done;
    this.ending ??= { reason, message };
    this.proc.signal(`SIG${signal}`, "all");
    if (signal === "TERM") {
      this.proc.signal("SIGCONT", "all");
      const kill = setTimeout(() => this.proc.signal("SIGKILL", "all"), graceMs);
      void this.done.then(() => clearTimeout(kill));
    }
    return this.done;
  }

  /** DeleteAgent: subscribers get the exit at once, without the output they have not taken. */
  abandonSubscribers(): void {
    for (const s of this.subs) s.abandonOutput();
  }

  // --- internals ---

  private checkRunning(what: string): void {
    if (this.exited)
      throw new GatewayError("failed_precondition", `agent ${this.record.id} has exited: ${what} is not possible`, {
        code: "agent_exited",
      });
  }

  private onOutput(chunk: Buffer): void {
    try {
      this.log.append(chunk);
    } catch (err) {
      // A full or failing disk must not take the server down (this runs in node-pty's data
      // handler): the agent is stopped instead, since its output could no longer be kept.
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      void this.end("supervisor_stopped", `the agent's output log could not be written (${code})`, "KILL");
      return;
    }
    this.record.outputBytes = this.log.end;
    this.record.logStartOffset = this.log.start;
    this.touch();
    for (const s of this.subs) s.outputAppended();
    if (!this.watch.empty) for (const m of this.watch.feed(chunk, this.log.end - chunk.length)) this.onMatch(m);
    this.deps.changed(false);
  }

  private onMatch(m: WatchMatch): void {
    const { rule } = m;
    this.broadcast(
      notice("watch_rule_matched", `watch rule ${rule.name} matched; action ${rule.action}`, {
        offset: m.offset,
        ruleName: rule.name,
        matchedText: m.text,
      }),
    );
    if (this.exited || this.ending) return;
    if (rule.action === "pause" && this.record.state === "running") {
      this.proc.signal("SIGSTOP", "all");
      this.setPaused(true, rule.name, `paused by watch rule ${rule.name}`);
    } else if (rule.action === "kill") {
      void this.end("watch_rule", `watch rule ${rule.name} matched`, "KILL");
    }
  }

  private setPaused(paused: boolean, rule: string, message: string): void {
    if (this.exited) return;
    const was = this.record.state;
    this.record.state = paused ? "paused" : "running";
    this.record.pausedByRule = paused ? rule : "";
    if (was !== this.record.state) {
      this.broadcast(notice(paused ? "paused" : "resumed", message, rule ? { ruleName: rule } : {}));
      // The idle clock does not run while a person decides.
      if (!paused) this.touch();
      this.deps.changed(true);
    }
  }

  private touch(): void {
    this.lastActivity = Date.now();
    this.record.lastActivityAt = new Date(this.lastActivity);
  }

  /** One timer, re-armed for the remaining time instead of on every byte. */
  private armIdle(idleMs: number): void {
    const due = this.lastActivity + idleMs - Date.now();
    this.idleTimer = setTimeout(
      () => {
        if (this.exited) return;
        if (this.record.state === "running" && this.holders.size === 0 && Date.now() - this.lastActivity >= idleMs)
          void this.end("idle_time_limit", `idle time limit of ${describeMs(idleMs)} reached`, "KILL");
        else {
          if (this.record.state !== "running" || this.holders.size > 0) this.touch();
          this.armIdle(idleMs);
        }
      },
      Math.max(due, 1),
    );
  }

  private onExit(e: PtyExit): void {
    this.coalescer.flush();
    clearTimeout(this.wallTimer);
    clearTimeout(this.idleTimer);
    const reason: ExitReason =
      this.ending?.reason ?? (e.signal ? (this.clientSignaled ? "client_signal" : "signaled") : "exited");
    const name = signalName(e.signal);
    const message =
      this.ending?.message ??
      (e.signal ? `ended by ${name || `signal ${e.signal}`}` : `exited with code ${e.exitCode}`);
    this.record.exit = {
      exitCode: e.signal ? undefined : e.exitCode,
      signal: e.signal,
      signalName: name,
      reason,
      message,
      endedAt: new Date(),
    };
    this.record.state = "exited";
    this.record.pid = 0;
    this.record.pausedByRule = "";
    this.record.outputBytes = this.log.end;
    this.record.logStartOffset = this.log.start;
    try {
      this.log.close();
      this.deps.launch.cleanup();
    } catch {
      // best effort: the exit must still be recorded
    }
    this.holders.clear();
    for (const s of this.subs) s.exited();
    this.deps.changed(true);
    this.deps.ended();
    this.exitResolve();
  }

  private broadcast(n: AgentNotice, except?: Subscription): void {
    for (const s of this.subs) if (s !== except) s.notify(n);
  }
}

function clientsNotice(count: number, what: string): AgentNotice {
  return notice("clients_changed", `${what}; ${count} attached`, { attachedClients: count });
}

/** A finished agent's log and exit, read from disk (after an exit, a restart, or on another run). */
export class FinishedAgent implements SubscriptionHost {
  constructor(
    private readonly log: OutputLog,
    readonly exit: ExitStatus | undefined,
  ) {}
  get logStart(): number {
    return this.log.start;
  }
  get logEnd(): number {
    return this.log.end;
  }
  readLog(since: number, maxBytes: number): LogRange {
    return this.log.read(since, maxBytes);
  }
  input(): number {
    throw ended();
  }
  resize(): TerminalSize {
    throw ended();
  }
  signal(): void {
    throw ended();
  }
  holdOutput(): void {}
  detach(): void {}
}

function ended(): GatewayError {
  return new GatewayError("failed_precondition", "the agent has exited", { code: "agent_exited" });
}
