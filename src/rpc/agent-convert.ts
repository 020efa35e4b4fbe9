/**
 * agentgate.v1 AgentService messages <-> the agent domain's types (src/agents/types.ts).
 * Enum values outside the known set and UNSPECIFIED where a value is required are invalid_argument.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampFromDate, type Duration } from "@bufbuild/protobuf/wkt";
import {
  AgentExitReason as PbExitReason,
  AgentExitStatusSchema,
  AgentNoticeKind as PbNoticeKind,
  AgentNoticeSchema,
  AgentSchema,
  AgentSignal as PbSignal,
  AgentSignalTarget as PbTarget,
  AgentState as PbState,
  AgentWatchRuleAction as PbAction,
  AgentWatchRuleSchema,
  AttachMode as PbAttachMode,
  AttachOverflowPolicy as PbOverflow,
  ProcessLimitsSchema,
  SandboxDriver as PbSandbox,
  TerminalSizeSchema,
  type Agent as PbAgent,
  type AgentExitStatus as PbExitStatus,
  type AgentNotice as PbNotice,
  type ProcessLimits as PbLimits,
  type StartAgentRequest,
  type TerminalSize as PbSize,
} from "../../gen/agentgate/v1/agent_service_pb.js";
import {
  AGENT_SIGNALS,
  type AgentLimits,
  type AgentNotice,
  type AgentRecord,
  type AgentSignal,
  type AgentState,
  type AttachMode,
  type ExitReason,
  type ExitStatus,
  type NoticeKind,
  type OverflowPolicy,
  type StartAgentSpec,
  type TerminalSize,
  type WatchRuleAction,
} from "../agents/types.js";
import type { SignalTarget } from "../agents/pty-process.js";
import type { SandboxDriverName } from "../sandbox/types.js";
import { invalidArgument } from "../errors/gateway-error.js";

/** A two-way table between a protobuf enum and domain strings. */
function table<P extends number, D extends string>(pairs: [P, D][]) {
  const toDomain = new Map<number, D>(pairs);
  const toPb = new Map<D, P>(pairs.map(([p, d]) => [d, p]));
  return {
    domain: (p: P): D | undefined => toDomain.get(p),
    pb: (d: D): P => toPb.get(d)!,
  };
}

const STATES = table<PbState, AgentState>([
  [PbState.STARTING, "starting"],
  [PbState.RUNNING, "running"],
  [PbState.PAUSED, "paused"],
  [PbState.EXITED, "exited"],
]);
const SANDBOXES = table<PbSandbox, SandboxDriverName>([
  [PbSandbox.NONE, "none"],
  [PbSandbox.BWRAP, "bwrap"],
  [PbSandbox.NSJAIL, "nsjail"],
]);
const SIGNALS = table<PbSignal, AgentSignal>([
  [PbSignal.INT, "INT"],
  [PbSignal.TERM, "TERM"],
  [PbSignal.KILL, "KILL"],
  [PbSignal.HUP, "HUP"],
  [PbSignal.STOP, "STOP"],
  [PbSignal.CONT, "CONT"],
  [PbSignal.QUIT, "QUIT"],
  [PbSignal.USR1, "USR1"],
  [PbSignal.USR2, "USR2"],
]);
const TARGETS = table<PbTarget, SignalTarget>([
  [PbTarget.FOREGROUND, "foreground"],
  [PbTarget.MAIN, "main"],
  [PbTarget.ALL, "all"],
]);
const REASONS = table<PbExitReason, ExitReason>([
  [PbExitReason.EXITED, "exited"],
  [PbExitReason.SIGNALED, "signaled"],
  [PbExitReason.CLIENT_SIGNAL, "client_signal"],
  [PbExitReason.WALL_TIME_LIMIT, "wall_time_limit"],
  [PbExitReason.IDLE_TIME_LIMIT, "idle_time_limit"],
  [PbExitReason.WATCH_RULE, "watch_rule"],
  [PbExitReason.DELETED, "deleted"],
  [PbExitReason.SPAWN_FAILED, "spawn_failed"],
  [PbExitReason.SUPERVISOR_STOPPED, "supervisor_stopped"],
]);
const ACTIONS = table<PbAction, WatchRuleAction>([
  [PbAction.PAUSE, "pause"],
  [PbAction.NOTIFY, "notify"],
  [PbAction.KILL, "kill"],
]);
const NOTICES = table<PbNoticeKind, NoticeKind>([
  [PbNoticeKind.WATCH_RULE_MATCHED, "watch_rule_matched"],
  [PbNoticeKind.PAUSED, "paused"],
  [PbNoticeKind.RESUMED, "resumed"],
  [PbNoticeKind.OUTPUT_SKIPPED, "output_skipped"],
  [PbNoticeKind.REPLAY_TRUNCATED, "replay_truncated"],
  [PbNoticeKind.RESIZED, "resized"],
  [PbNoticeKind.CLIENTS_CHANGED, "clients_changed"],
  [PbNoticeKind.FLOW_CONTROL_PAUSED, "flow_control_paused"],
]);

// --- requests -> domain ---

export function toSignal(p: PbSignal, param = "signal"): AgentSignal {
  const s = SIGNALS.domain(p);
  if (!s) throw invalidArgument(`${param} must be one of ${AGENT_SIGNALS.join(", ")}`, param);
  return s;
}

export function toTarget(p: PbTarget, param = "target"): SignalTarget | undefined {
  if (p === PbTarget.UNSPECIFIED) return undefined;
  const t = TARGETS.domain(p);
  if (!t) throw invalidArgument(`${param} is not a known signal target`, param);
  return t;
}

export function toStates(states: PbState[]): AgentState[] {
  return states.map((s) => {
    const d = STATES.domain(s);
    if (!d) throw invalidArgument("states must be STARTING, RUNNING, PAUSED or EXITED", "states");
    return d;
  });
}

export function toSize(s: PbSize | undefined): TerminalSize | undefined {
  return s ? { cols: s.cols, rows: s.rows } : undefined;
}

export function toAttachMode(m: PbAttachMode): AttachMode {
  if (m === PbAttachMode.READ_ONLY) return "read-only";
  if (m === PbAttachMode.READ_WRITE || m === PbAttachMode.UNSPECIFIED) return "read-write";
  throw invalidArgument("mode is not a known attach mode", "open.mode");
}

export function toOverflow(p: PbOverflow): OverflowPolicy {
  switch (p) {
    case PbOverflow.UNSPECIFIED:
    case PbOverflow.SKIP:
      return "skip";
    case PbOverflow.DISCONNECT:
      return "disconnect";
    case PbOverflow.PAUSE_AGENT:
      return "pause-agent";
    default:
      throw invalidArgument("overflow_policy is not a known policy", "open.overflow_policy");
  }
}

/** uint64 fields arrive as bigint; anything past 2^53 is no size we could honour. */
export function toNumber(v: bigint, param: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`${param} is too large`, param);
  return Number(v);
}

function toMs(d: Duration | undefined, param: string): number | undefined {
  if (!d) return undefined;
  const ms = durationMs(d);
  if (!(ms >= 1)) throw invalidArgument(`${param} must be at least 1 ms`, param);
  return Math.round(ms);
}

export function toLimits(l: PbLimits | undefined): AgentLimits {
  if (!l) return {};
  const out: AgentLimits = {};
  if (l.addressSpaceBytes !== undefined)
    out.addressSpaceBytes = toNumber(l.addressSpaceBytes, "limits.address_space_bytes");
  if (l.cpuSeconds !== undefined) out.cpuSeconds = l.cpuSeconds;
  if (l.fileSizeBytes !== undefined) out.fileSizeBytes = toNumber(l.fileSizeBytes, "limits.file_size_bytes");
  if (l.openFiles !== undefined) out.openFiles = l.openFiles;
  if (l.processes !== undefined) out.processes = l.processes;
  const wall = toMs(l.wallTime, "limits.wall_time");
  if (wall !== undefined) out.wallTimeMs = wall;
  const idle = toMs(l.idleTime, "limits.idle_time");
  if (idle !== undefined) out.idleTimeMs = idle;
  return out;
}

export function toStartSpec(r: StartAgentRequest): StartAgentSpec {
  return {
    argv: r.argv,
    prompt: r.prompt,
    model: r.model || undefined,
    workingDirectory: r.workingDirectory || undefined,
    keepWorkspace: r.keepWorkspace,
    env: r.env,
    size: toSize(r.size),
    term: r.term || undefined,
    sandbox: r.sandbox === PbSandbox.UNSPECIFIED ? undefined : sandboxOf(r.sandbox),
    networkAllowed: r.networkAllowed,
    limits: toLimits(r.limits),
    bypassApprovals: r.bypassApprovals,
    watchRules: r.watchRules.map((w, i) => {
      const action = ACTIONS.domain(w.action);
      if (!action)
        throw invalidArgument(`watch_rules[${i}].action must be PAUSE, NOTIFY or KILL`, "watch_rules.action");
      return { name: w.name, pattern: w.pattern, ignoreCase: w.ignoreCase, action };
    }),
    name: r.name || undefined,
    labels: r.labels,
  };
}

function sandboxOf(p: PbSandbox): SandboxDriverName {
  const d = SANDBOXES.domain(p);
  if (!d) throw invalidArgument("sandbox is not a known driver", "sandbox");
  return d;
}

// --- domain -> responses ---

export function pbSize(s: TerminalSize): PbSize {
  return create(TerminalSizeSchema, s);
}

export function pbExit(e: ExitStatus): PbExitStatus {
  return create(AgentExitStatusSchema, {
    exitCode: e.exitCode,
    signal: e.signal,
    signalName: e.signalName,
    reason: REASONS.pb(e.reason),
    message: e.message,
    endedAt: timestampFromDate(e.endedAt),
  });
}

export function pbLimits(l: AgentLimits): PbLimits {
  return create(ProcessLimitsSchema, {
    addressSpaceBytes: l.addressSpaceBytes === undefined ? undefined : BigInt(l.addressSpaceBytes),
    cpuSeconds: l.cpuSeconds,
    fileSizeBytes: l.fileSizeBytes === undefined ? undefined : BigInt(l.fileSizeBytes),
    openFiles: l.openFiles,
    processes: l.processes,
    wallTime: l.wallTimeMs === undefined ? undefined : durationFromMs(l.wallTimeMs),
    idleTime: l.idleTimeMs === undefined ? undefined : durationFromMs(l.idleTimeMs),
  });
}

export function pbAgent(a: AgentRecord): PbAgent {
  return create(AgentSchema, {
    id: a.id,
    name: a.name,
    labels: a.labels,
    state: STATES.pb(a.state),
    pid: a.pid,
    replicaAddress: a.replicaAddress,
    argv: a.argv,
    workingDirectory: a.workingDirectory,
    freshWorkspace: a.freshWorkspace,
    sandbox: SANDBOXES.pb(a.sandbox),
    networkAllowed: a.networkAllowed,
    limits: pbLimits(a.limits),
    bypassApprovals: a.bypassApprovals,
    watchRules: a.watchRules.map((w) =>
      create(AgentWatchRuleSchema, {
        name: w.name,
        pattern: w.pattern,
        ignoreCase: w.ignoreCase,
        action: ACTIONS.pb(w.action),
      }),
    ),
    size: pbSize(a.size),
    createdAt: timestampFromDate(a.createdAt),
    startedAt: a.startedAt && timestampFromDate(a.startedAt),
    lastActivityAt: a.lastActivityAt && timestampFromDate(a.lastActivityAt),
    exitStatus: a.exit && pbExit(a.exit),
    outputBytes: BigInt(a.outputBytes),
    logStartOffset: BigInt(a.logStartOffset),
    inputBytes: BigInt(a.inputBytes),
    attachedClients: a.attachedClients,
    pausedByRule: a.pausedByRule,
  });
}

export function pbNotice(n: AgentNotice): PbNotice {
  return create(AgentNoticeSchema, {
    kind: NOTICES.pb(n.kind),
    message: n.message,
    offset: BigInt(n.offset ?? 0),
    length: BigInt(n.length ?? 0),
    ruleName: n.ruleName ?? "",
    matchedText: n.matchedText ?? "",
    size: n.size && pbSize(n.size),
    attachedClients: n.attachedClients ?? 0,
    time: timestampFromDate(n.time),
  });
}

export function pbAttachMode(m: AttachMode): PbAttachMode {
  return m === "read-only" ? PbAttachMode.READ_ONLY : PbAttachMode.READ_WRITE;
}
