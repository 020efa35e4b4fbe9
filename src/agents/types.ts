/**
 * The agent domain's neutral types: what the supervisor takes and returns, independent of protobuf
 * (src/rpc/agent-convert.ts translates) so REST, WebSocket and CLI layers can use the same API.
 */
import type { ProcessLimits, SandboxDriverName } from "../sandbox/types.js";
import type { WatchRule } from "./watch-rules.js";

export type { WatchRule, WatchRuleAction } from "./watch-rules.js";

export type AgentState = "starting" | "running" | "paused" | "exited";

export type ExitReason =
  | "exited"
  | "signaled"
  | "client_signal"
  | "wall_time_limit"
  | "idle_time_limit"
  | "watch_rule"
  | "deleted"
  | "spawn_failed"
  | "supervisor_stopped";

/** The signals a client may send. */
export const AGENT_SIGNALS = ["INT", "TERM", "KILL", "HUP", "STOP", "CONT", "QUIT", "USR1", "USR2"] as const;
export type AgentSignal = (typeof AGENT_SIGNALS)[number];

export interface TerminalSize {
  cols: number;
  rows: number;
}

/** Resource limits: the sandbox's rlimits plus the supervisor's clocks. */
export interface AgentLimits extends ProcessLimits {
  wallTimeMs?: number;
  idleTimeMs?: number;
}

export interface ExitStatus {
  /** Set when the program exited normally. */
  exitCode?: number;
  /** Signal number, 0 when none. */
  signal: number;
  /** "SIGKILL", empty when none. */
  signalName: string;
  reason: ExitReason;
  message: string;
  endedAt: Date;
}

/** What a caller asks for (StartAgent). Unset fields take defaults. */
export interface StartAgentSpec {
  argv?: string[];
  prompt?: string;
  model?: string;
  workingDirectory?: string;
  keepWorkspace?: boolean;
  env?: Record<string, string>;
  size?: TerminalSize;
  term?: string;
  /** Unset: the supervisor's default driver. */
  sandbox?: SandboxDriverName;
  networkAllowed?: boolean;
  limits?: AgentLimits;
  bypassApprovals?: boolean;
  watchRules?: WatchRule[];
  name?: string;
  labels?: Record<string, string>;
}

/** An agent's record: what GetAgent returns. */
export interface AgentRecord {
  id: string;
  name: string;
  labels: Record<string, string>;
  state: AgentState;
  /** Host pid of the main process; 0 once exited. */
  pid: number;
  /** "host:port" of the replica that holds the terminal. */
  replicaAddress: string;
  argv: string[];
  workingDirectory: string;
  freshWorkspace: boolean;
  keepWorkspace: boolean;
  sandbox: SandboxDriverName;
  networkAllowed: boolean;
  limits: AgentLimits;
  bypassApprovals: boolean;
  watchRules: WatchRule[];
  size: TerminalSize;
  term: string;
  createdAt: Date;
  startedAt?: Date;
  lastActivityAt?: Date;
  exit?: ExitStatus;
  outputBytes: number;
  logStartOffset: number;
  inputBytes: number;
  attachedClients: number;
  /** The watch rule that paused the agent, when one did. */
  pausedByRule: string;
}

export type NoticeKind =
  | "watch_rule_matched"
  | "paused"
  | "resumed"
  | "output_skipped"
  | "replay_truncated"
  | "resized"
  | "clients_changed"
  | "flow_control_paused";

export interface AgentNotice {
  kind: NoticeKind;
  message: string;
  offset?: number;
  length?: number;
  ruleName?: string;
  matchedText?: string;
  size?: TerminalSize;
  attachedClients?: number;
  time: Date;
}

/** One item of a subscription: output (with its absolute offset), a notice, or the final exit. */
export type AgentEvent =
  | { type: "output"; offset: number; data: Buffer; replay: boolean }
  | { type: "notice"; notice: AgentNotice }
  | { type: "exit"; exit: ExitStatus };

export type AttachMode = "read-only" | "read-write";
export type OverflowPolicy = "skip" | "disconnect" | "pause-agent";

/** Where a subscription or a read starts. */
export type LogStart = { offset: number } | { tail: number } | undefined;

export interface ListAgentsQuery {
  pageSize?: number;
  pageToken?: string;
  states?: AgentState[];
  labels?: Record<string, string>;
}
