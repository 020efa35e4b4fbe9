/**
 * The agent domain's entry point: starts programs (by default the Codex CLI) in pseudo-terminals,
 * optionally inside a sandbox, and answers every question about agents, live or not. API layers
 * (Connect in src/rpc/agent-service.ts; REST, WebSocket and a CLI later) are thin over this class:
 *
 *   const sup = await AgentSupervisor.open({ db, dataDir, instanceId, tools });
 *   const agent = await sup.start({ argv: ["sh"], sandbox: "none" });
 *   const sub = await sup.subscribe(agent.id, { from: { offset: 0 } });
 *   for await (const e of sub) ...            // output (absolute offsets), notices, exit
 *   await sup.close();                        // ends live agents as SUPERVISOR_STOPPED
 *
 * Live agents are held in memory (LiveAgent) and written to the `agents` table as they change;
 * everything else is read from the table and from the log files under DATA_DIR/agents/<id>/.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { locateCodex } from "../backends/codex/locate-codex.js";
import { GatewayError, invalidArgument } from "../errors/gateway-error.js";
import { codexReadOnlyPaths, provisionCodexHome, SANDBOX_CODEX_HOME } from "../sandbox/codex-home-provision.js";
import { sandboxDriver } from "../sandbox/drivers.js";
import type { SandboxDriverName, SandboxLaunch } from "../sandbox/types.js";
import { UidPool } from "../sandbox/uid-pool.js";
import type { Queryable } from "../storage/database.js";
import type { SystemTools } from "../system/system-tools.js";
import { newId } from "../util/ids.js";
import {
  deleteAgentRecord,
  getAgentRecord,
  insertAgent,
  listAgentRecords,
  markOrphansStopped,
  updateAgent,
  type AgentOwner,
} from "./agent-store.js";
import { FinishedAgent, LiveAgent } from "./live-agent.js";
import { OutputLog } from "./output-log.js";
import { PtyProcess, type SignalTarget } from "./pty-process.js";
import { Subscription, type SubscribeOptions } from "./subscription.js";
import type { AgentRecord, AgentSignal, ListAgentsQuery, LogStart, StartAgentSpec, TerminalSize } from "./types.js";
import { DEFAULT_SIZE, DEFAULT_TERM, validatePageSize, validateStartSpec } from "./validate.js";

export interface AgentSupervisorOptions {
  db: Queryable;
  /** DATA_DIR: logs in agents/<id>/, fresh workspaces in workspaces/<id>/; hidden from sandboxes. */
  dataDir: string;
  /** This replica's id for this run (src/storage/instances.ts). */
  instanceId: string;
  /** "host:port" other replicas reach this one on; can be set later (setReplicaAddress). */
  replicaAddress?: string;
  tools: SystemTools;
  /** AGENT_MAX_LOG_BYTES (default 1 MiB). */
  ringBytes?: number;
  /** AGENT_LOG_FILE_MAX_BYTES (default 64 MiB). */
  logFileMaxBytes?: number;
  /** The driver for requests that name none. */
  defaultSandbox?: SandboxDriverName;
  /** CODEX_BIN, for the default command. */
  codexBin?: string;
  /** Directories a caller's working_directory must be inside; default anywhere outside DATA_DIR. */
  allowedRoots?: string[];
  /** Uids for sandboxed agents; default the sandbox module's range. */
  uidPool?: UidPool;
  logger?: Logger;
  /** How often output counters are written to the database while output flows (default 1 s). */
  persistIntervalMs?: number;
  /**
   * agentgate's AUTH_TOKEN, handed to a sandboxed Codex agent so it can call this agentgate back
   * (default process.env.AUTH_TOKEN; without one a placeholder, as agentgate then checks nothing).
   */
  authToken?: string;
  /** MODEL: what a sandboxed Codex agent asks for when StartAgent names no model (default process.env.MODEL, else qwen3:8b). */
  defaultModel?: string;
}

export interface ReadLogsResult {
  offset: number;
  data: Buffer;
  endOffset: number;
  logStartOffset: number;
  eof: boolean;
}

export const DEFAULT_RING_BYTES = 1024 * 1024;
export const DEFAULT_LOG_FILE_MAX_BYTES = 64 * 1024 * 1024;
export const MAX_READ_BYTES = 4 * 1024 * 1024;
const DEFAULT_READ_BYTES = 64 * 1024;
const DEFAULT_DELETE_GRACE_MS = 5000;
/** close(): time between TERM and KILL for live agents. */
const CLOSE_GRACE_MS = 1000;

interface Live {
  agent: LiveAgent;
  persist: Persister;
}

/** Serialises one agent's record writes (no reordering) and coalesces frequent ones. */
class Persister {
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly log?: Logger,
  ) {}

  now(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.chain = this.chain
      .then(this.write)
      .catch((err: unknown) => this.log?.warn({ err }, "agent record write failed"));
    return this.chain;
  }

  soon(): void {
    this.timer ??= setTimeout(() => void this.now(), this.intervalMs);
  }

  flush(): Promise<void> {
    return this.timer ? this.now() : this.chain;
  }
}

export class AgentSupervisor {
  private readonly o: AgentSupervisorOptions;
  private readonly owner: AgentOwner;
  private readonly live = new Map<string, Live>();
  private readonly uids: UidPool;
  private replicaAddress: string;
  private closed = false;

  private constructor(o: AgentSupervisorOptions) {
    this.o = o;
    this.owner = { instanceId: o.instanceId, nodeKey: `${os.hostname()}:${path.resolve(o.dataDir)}` };
    this.uids = o.uidPool ?? new UidPool();
    this.replicaAddress = o.replicaAddress ?? "";
  }

  /**
   * Opens the supervisor. Agents this node recorded as running in an earlier run (it crashed or was
   * killed without close()) are marked EXITED with reason SUPERVISOR_STOPPED; their logs stay
   * readable, and their offsets are taken from the log files, which are ahead of the last write.
   */
  static async open(o: AgentSupervisorOptions): Promise<AgentSupervisor> {
    const sup = new AgentSupervisor(o);
    const orphans = await markOrphansStopped(
      o.db,
      sup.owner,
      "agentgate stopped while the agent ran (found at the next start)",
    );
    for (const a of orphans) {
      const log = OutputLog.openReadOnly(sup.logDir(a.id));
      a.outputBytes = log.end;
      a.logStartOffset = log.start;
      await updateAgent(o.db, a);
    }
    if (orphans.length)
      o.logger?.warn({ agents: orphans.map((a) => a.id) }, "agents from an earlier run marked stopped");
    if (process.pid === 1)
      o.logger?.warn(
        "agentgate runs as pid 1: the zombies bwrap leaves at every sandbox exit will not be reaped; run it under an init (docker run --init)",
      );
    return sup;
  }

  setReplicaAddress(address: string): void {
    this.replicaAddress = address;
  }

  // --- lifecycle ---

  async start(spec: StartAgentSpec): Promise<AgentRecord> {
    this.checkOpen();
    validateStartSpec(spec);
    const driverName = spec.sandbox ?? this.o.defaultSandbox ?? "none";
    if (spec.bypassApprovals && driverName === "none")
      throw new GatewayError(
        "failed_precondition",
        "bypass_approvals runs Codex without its own sandbox: allowed only inside agentgate's sandbox (bwrap or nsjail), not with sandbox NONE",
        { code: "bypass_needs_sandbox" },
      );
    if (spec.bypassApprovals && spec.argv?.length)
      throw invalidArgument(
        "bypass_approvals applies to the default Codex command; with argv, pass Codex's flags yourself",
        "bypass_approvals",
      );
    const driver = sandboxDriver(driverName, this.o.tools);
    const id = newId("agt_");
    const { argv, readOnlyPaths, env: codexEnv } = this.command(spec, driverName);
    const fresh = !spec.workingDirectory;
    const workspace = fresh ? this.freshWorkspace(id) : this.checkWorkingDirectory(spec.workingDirectory!);
    const size = spec.size ?? DEFAULT_SIZE;
    const term = spec.term || DEFAULT_TERM;
    const uid = driverName === "none" || process.getuid?.() !== 0 ? undefined : this.uids.acquire();
    let launch: SandboxLaunch | undefined;
    let log: OutputLog | undefined;
    try {
      // Before prepare(): bwrap's prepare chowns the workspace tree, .codex included, to the agent's uid.
      if (codexEnv.CODEX_HOME === SANDBOX_CODEX_HOME)
        Object.assign(
          codexEnv,
          provisionCodexHome({
            workspace,
            replicaAddress: this.replicaAddress,
            model: spec.model || this.o.defaultModel || "qwen3:8b",
            authToken: this.o.authToken,
          }),
        );
      launch = driver.prepare({
        driver: driverName,
        argv,
        workspace,
        env: { LANG: process.env.LANG || "C.UTF-8", ...codexEnv, ...spec.env, TERM: term },
        network: spec.networkAllowed ?? false,
        limits: withoutClocks(spec.limits ?? {}),
        hiddenPaths: [path.resolve(this.o.dataDir)],
        readOnlyPaths,
        uid,
      });
      if (driverName === "none") checkProgram(argv[0]!, launch.env.PATH ?? "", workspace);
      const record: AgentRecord = {
        id,
        name: spec.name ?? "",
        labels: spec.labels ?? {},
        state: "starting",
        pid: 0,
        replicaAddress: this.replicaAddress,
        argv,
        workingDirectory: workspace,
        freshWorkspace: fresh,
        keepWorkspace: spec.keepWorkspace ?? false,
        sandbox: driverName,
        // Without a sandbox nothing stops the program from using the network: say so.
        networkAllowed: driverName === "none" ? true : (spec.networkAllowed ?? false),
        limits: spec.limits ?? {},
        bypassApprovals: spec.bypassApprovals ?? false,
        watchRules: spec.watchRules ?? [],
        size: { ...size },
        term,
        createdAt: new Date(),
        outputBytes: 0,
        logStartOffset: 0,
        inputBytes: 0,
        attachedClients: 0,
        pausedByRule: "",
      };
      await insertAgent(this.o.db, record, this.owner);
      log = OutputLog.create(this.logDir(id), {
        ringBytes: this.o.ringBytes ?? DEFAULT_RING_BYTES,
        fileMaxBytes: this.o.logFileMaxBytes ?? DEFAULT_LOG_FILE_MAX_BYTES,
      });
      let proc: PtyProcess;
      try {
        proc = PtyProcess.spawn({
          file: launch.file,
          args: launch.args,
          env: launch.env,
          cwd: launch.cwd,
          ...size,
          term,
          sandboxed: driverName === "bwrap",
        });
      } catch (err) {
        record.state = "exited";
        record.exit = {
          signal: 0,
          signalName: "",
          reason: "spawn_failed",
          message: `the process could not be started: ${(err as Error).message}`,
          endedAt: new Date(),
        };
        await updateAgent(this.o.db, record);
        launch.cleanup();
        log.close();
        if (uid !== undefined) this.uids.release(uid);
        return record;
      }
      record.state = "running";
      record.pid = proc.pid;
      record.startedAt = record.lastActivityAt = new Date();
      this.attach(record, proc, log, launch, uid);
      await this.live.get(id)!.persist.now();
      this.o.logger?.info({ agent: id, pid: proc.pid, sandbox: driverName, argv0: argv[0] }, "agent started");
      return this.snapshot(record);
    } catch (err) {
      launch?.cleanup();
      log?.close();
      if (uid !== undefined) this.uids.release(uid);
      if (fresh) fs.rmSync(workspace, { recursive: true, force: true });
      await deleteAgentRecord(this.o.db, id).catch(() => undefined);
      fs.rmSync(this.logDir(id), { recursive: true, force: true });
      throw err;
    }
  }

  private attach(record: AgentRecord, proc: PtyProcess, log: OutputLog, launch: SandboxLaunch, uid?: number): void {
    const persist = new Persister(
      () => updateAgent(this.o.db, record),
      this.o.persistIntervalMs ?? 1000,
      this.o.logger,
    );
    const agent = new LiveAgent({
      record,
      proc,
      log,
      launch,
      changed: (urgent) => (urgent ? void persist.now() : persist.soon()),
      ended: () => {
        if (uid !== undefined) this.uids.release(uid);
        this.o.logger?.info({ agent: record.id, exit: record.exit }, "agent ended");
        // Forget it once the exit is stored; readers then get it from the database.
        void persist.flush().then(() => {
          if (this.live.get(record.id)?.agent === agent) this.live.delete(record.id);
        });
      },
    });
    this.live.set(record.id, { agent, persist });
  }

  // --- queries ---

  async get(id: string): Promise<AgentRecord> {
    const l = this.live.get(id);
    if (l) return this.snapshot(l.agent.record);
    const rec = await getAgentRecord(this.o.db, id);
    if (!rec) throw notFound(id);
    return rec;
  }

  /** Newest first, filtered by state and labels; live agents show their in-memory state. */
  async list(q: ListAgentsQuery = {}): Promise<{ agents: AgentRecord[]; nextPageToken: string }> {
    validatePageSize(q.pageSize);
    const page = await listAgentRecords(this.o.db, q);
    return {
      agents: page.agents.map((a) => {
        const l = this.live.get(a.id);
        return l ? this.snapshot(l.agent.record) : a;
      }),
      nextPageToken: page.nextPageToken,
    };
  }

  // --- steering ---

  async input(id: string, data: Buffer): Promise<number> {
    return (await this.running(id, "input")).input(data);
  }

  async resize(id: string, size: TerminalSize): Promise<TerminalSize> {
    return (await this.running(id, "resize")).resize(size);
  }

  async signal(id: string, signal: AgentSignal, target?: SignalTarget): Promise<AgentRecord> {
    const agent = await this.running(id, "signal");
    agent.signal(signal, target);
    return this.snapshot(agent.record);
  }

  // --- output ---

  /** A range of output by offset or as a tail; works for every agent whose log is on this node. */
  async readLogs(id: string, start: LogStart, maxBytes = 0): Promise<ReadLogsResult> {
    if (maxBytes < 0 || maxBytes > MAX_READ_BYTES)
      throw invalidArgument(`max_bytes must be at most ${MAX_READ_BYTES}`, "max_bytes");
    const max = maxBytes || DEFAULT_READ_BYTES;
    const l = this.live.get(id);
    const rec = l ? undefined : await this.get(id);
    if (rec && rec.state !== "exited") throw elsewhere(rec);
    const exited = l ? l.agent.exited : true;
    const log = l ? l.agent.log : OutputLog.openReadOnly(this.logDir(id));
    const range =
      start === undefined
        ? log.read(log.start, max)
        : "offset" in start
          ? log.read(start.offset, max)
          : log.tail(start.tail, max);
    const endOffset = log.end;
    return {
      offset: range.offset,
      data: range.data,
      endOffset,
      logStartOffset: log.start,
      eof: exited && range.offset + range.data.length >= endOffset,
    };
  }

  /**
   * Watches an agent: output from `opts.from` (replay) and then live, notices, and the exit status
   * last. Works for ended agents too (replay, then the exit at once).
   */
  async subscribe(id: string, opts: SubscribeOptions = {}): Promise<Subscription> {
    const l = this.live.get(id);
    if (l) return l.agent.subscribe(opts);
    const rec = await this.get(id);
    if (rec.state !== "exited") throw elsewhere(rec);
    if (opts.overflow === "pause-agent" && opts.mode === "read-only")
      throw new GatewayError("permission_denied", "the PAUSE_AGENT overflow policy needs a read-write attach");
    return new Subscription(new FinishedAgent(OutputLog.openReadOnly(this.logDir(id)), rec.exit), rec, opts);
  }

  // --- deletion and shutdown ---

  /**
   * Ends the agent if it runs (TERM, KILL after the grace period), then removes its record, its
   * logs and its fresh workspace (unless keep_workspace).
   */
  async delete(id: string, gracePeriodMs = DEFAULT_DELETE_GRACE_MS): Promise<AgentRecord> {
    if (!Number.isFinite(gracePeriodMs) || gracePeriodMs < 0 || gracePeriodMs > 3_600_000)
      throw invalidArgument("grace_period must be from 0 to 1h", "grace_period");
    const l = this.live.get(id);
    if (l) {
      l.agent.abandonSubscribers();
      await l.agent.end("deleted", "deleted by DeleteAgent", "TERM", gracePeriodMs);
      await l.persist.flush();
    }
    const rec = l ? this.snapshot(l.agent.record) : await this.get(id);
    if (!l && rec.state !== "exited") throw elsewhere(rec);
    this.live.delete(id);
    await deleteAgentRecord(this.o.db, id);
    fs.rmSync(this.logDir(id), { recursive: true, force: true });
    if (rec.freshWorkspace && !rec.keepWorkspace) fs.rmSync(rec.workingDirectory, { recursive: true, force: true });
    return rec;
  }

  /** Ends every live agent (SUPERVISOR_STOPPED) and waits until each exit is stored. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.live.values()].map(async (l) => {
        await l.agent.end("supervisor_stopped", "agentgate stopped while the agent ran", "TERM", CLOSE_GRACE_MS);
        await l.persist.flush();
      }),
    );
    this.live.clear();
  }

  /** Agents running now on this replica. */
  get liveCount(): number {
    return this.live.size;
  }

  // --- helpers ---

  private checkOpen(): void {
    if (this.closed) throw new GatewayError("unavailable", "the agent supervisor is shutting down");
  }

  private async running(id: string, what: string): Promise<LiveAgent> {
    const l = this.live.get(id);
    if (l && !l.agent.exited) return l.agent;
    const rec = l ? l.agent.record : await this.get(id);
    if (rec.state !== "exited") throw elsewhere(rec);
    throw new GatewayError("failed_precondition", `agent ${id} has exited: ${what} is not possible`, {
      code: "agent_exited",
    });
  }

  private snapshot(r: AgentRecord): AgentRecord {
    return { ...r, size: { ...r.size }, labels: { ...r.labels } };
  }

  private logDir(id: string): string {
    // ids are generated here ("agt_" + base62), but ones from requests reach this too
    if (!/^agt_[0-9A-Za-z]{1,64}$/.test(id)) throw notFound(id);
    return path.join(this.o.dataDir, "agents", id);
  }

  /** The Codex CLI in exec mode when no argv is given, with what a sandbox must show of it. */
  private command(
    spec: StartAgentSpec,
    driverName: SandboxDriverName,
  ): { argv: string[]; readOnlyPaths: string[]; env: Record<string, string> } {
    if (spec.argv?.length) return { argv: spec.argv, readOnlyPaths: [], env: {} };
    const codex = locateCodex(this.o.codexBin);
    const argv = [
      codex.command,
      ...codex.prefix,
      "exec",
      "--skip-git-repo-check",
      ...(spec.model ? ["-m", spec.model] : []),
      ...(spec.bypassApprovals ? ["--dangerously-bypass-approvals-and-sandbox"] : []),
      "--",
      spec.prompt!,
    ];
    // The bundled CLI is a Node script plus a platform package beside it (node_modules/@openai/*).
    const readOnlyPaths = codexReadOnlyPaths(codex);
    // The host's CODEX_HOME does not exist inside bwrap: the agent gets its own (provisionCodexHome).
    const env: Record<string, string> =
      driverName === "bwrap"
        ? { CODEX_HOME: SANDBOX_CODEX_HOME }
        : process.env.CODEX_HOME
          ? { CODEX_HOME: process.env.CODEX_HOME }
          : {};
    return { argv, readOnlyPaths, env };
  }

  private freshWorkspace(id: string): string {
    const root = path.join(this.o.dataDir, "workspaces");
    // o+x so a sandbox uid can reach its own workspace (the workspace itself is 0700, chowned to it).
    fs.mkdirSync(root, { recursive: true, mode: 0o711 });
    const dir = path.join(root, id);
    fs.mkdirSync(dir, { mode: 0o700 });
    return dir;
  }

  private checkWorkingDirectory(dir: string): string {
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch {
      throw invalidArgument(`working_directory ${dir} does not exist`, "working_directory");
    }
    if (!fs.statSync(real).isDirectory())
      throw invalidArgument(`working_directory ${dir} is not a directory`, "working_directory");
    const data = path.resolve(this.o.dataDir);
    if (within(real, data) || within(data, real))
      throw invalidArgument(
        "working_directory may not contain or be inside agentgate's data directory",
        "working_directory",
      );
    const roots = this.o.allowedRoots;
    if (roots && !roots.some((r) => within(real, path.resolve(r))))
      throw invalidArgument(`working_directory must be inside one of ${roots.join(", ")}`, "working_directory");
    return real;
  }
}

/** CODEX_HOME of a Codex agent inside bwrap (shared with jobs: src/sandbox/codex-home-provision.ts). */
export { SANDBOX_CODEX_HOME };

function within(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

function withoutClocks(l: NonNullable<StartAgentSpec["limits"]>) {
  const { wallTimeMs: _w, idleTimeMs: _i, ...rest } = l;
  return rest;
}

/**
 * node-pty does not fail on a missing program (the child prints "execvp(3) failed." and exits 1),
 * so without a sandbox the program is looked up first, for a clear error.
 */
function checkProgram(file: string, pathEnv: string, cwd: string): void {
  const candidates = file.includes("/")
    ? [path.resolve(cwd, file)]
    : pathEnv
        .split(":")
        .filter(Boolean)
        .map((d) => path.join(d, file));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return;
    } catch {
      // next
    }
  }
  throw invalidArgument(`program ${JSON.stringify(file)} was not found or is not executable`, "argv");
}

function notFound(id: string): GatewayError {
  return new GatewayError("not_found", `agent ${id} not found`, { code: "agent_not_found" });
}

function elsewhere(rec: AgentRecord): GatewayError {
  return new GatewayError(
    "unavailable",
    `agent ${rec.id} runs on replica ${rec.replicaAddress || "(unknown)"}; forwarding between replicas is not implemented yet`,
    { code: "agent_on_other_replica" },
  );
}
