/**
 * Shared by the agent tests: a supervisor over a fresh in-memory database and a temporary DATA_DIR,
 * and a reader that consumes a subscription in the background so tests can await what arrives.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AgentSupervisor, type AgentSupervisorOptions } from "../../src/agents/agent-supervisor.js";
import type { Subscription } from "../../src/agents/subscription.js";
import type { AgentEvent, AgentNotice, ExitStatus } from "../../src/agents/types.js";
import type { Database } from "../../src/storage/database.js";
import { SystemTools } from "../../src/system/system-tools.js";
import { openTestDatabase } from "../support/test-database.js";

export function tempDir(prefix = "agentgate-agents-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // o+x, as a sandbox uid must be able to reach its workspace below (mkdtemp makes 0700).
  fs.chmodSync(dir, 0o711);
  return dir;
}

export interface SupervisorFixture {
  sup: AgentSupervisor;
  db: Database;
  dataDir: string;
  open(extra?: Partial<AgentSupervisorOptions>): Promise<AgentSupervisor>;
  close(): Promise<void>;
}

/** A supervisor (and the means to open more over the same database and DATA_DIR). */
export async function supervisorFixture(extra: Partial<AgentSupervisorOptions> = {}): Promise<SupervisorFixture> {
  const db = await openTestDatabase();
  const dataDir = tempDir();
  const opened: AgentSupervisor[] = [];
  const open = async (more: Partial<AgentSupervisorOptions> = {}) => {
    const s = await AgentSupervisor.open({
      db,
      dataDir,
      instanceId: randomUUID(),
      tools: new SystemTools(),
      defaultSandbox: "none",
      persistIntervalMs: 50,
      ...extra,
      ...more,
    });
    opened.push(s);
    return s;
  };
  const sup = await open();
  return {
    sup,
    db,
    dataDir,
    open,
    async close() {
      for (const s of opened) await s.close();
      await db.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Reads a subscription in the background; tests await conditions on what has arrived. */
export class Reader {
  readonly events: AgentEvent[] = [];
  output = Buffer.alloc(0);
  /** Offset just after the last output byte received. */
  nextOffset = 0;
  exit: ExitStatus | undefined;
  error: unknown;
  /** The stream has ended (exit, error or close). */
  ended = false;
  readonly done: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(readonly sub: Subscription) {
    this.nextOffset = sub.startOffset;
    this.done = (async () => {
      try {
        for await (const e of sub) {
          this.events.push(e);
          if (e.type === "output") {
            if (e.offset !== this.nextOffset)
              throw new Error(`gap: expected offset ${this.nextOffset}, got ${e.offset}`);
            this.output = Buffer.concat([this.output, e.data]);
            this.nextOffset = e.offset + e.data.length;
          } else if (e.type === "exit") this.exit = e.exit;
          else if (e.notice.kind === "output_skipped") this.nextOffset = e.notice.offset! + e.notice.length!;
          this.poke();
        }
      } catch (err) {
        this.error = err;
      } finally {
        this.ended = true;
        this.poke();
      }
    })();
  }

  get text(): string {
    return this.output.toString("utf8");
  }

  notices(kind?: AgentNotice["kind"]): AgentNotice[] {
    return this.events
      .filter((e): e is Extract<AgentEvent, { type: "notice" }> => e.type === "notice")
      .map((e) => e.notice)
      .filter((n) => !kind || n.kind === kind);
  }

  /** Resolves once `cond` holds (checked after every event); rejects if the stream ends first. */
  async until(cond: () => boolean, what = "condition"): Promise<void> {
    while (!cond()) {
      if (this.ended) throw new Error(`stream ended before ${what}: ${JSON.stringify(this.text.slice(-300))}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  untilText(s: string): Promise<void> {
    return this.until(() => this.text.includes(s), JSON.stringify(s));
  }

  untilNotice(kind: AgentNotice["kind"]): Promise<void> {
    return this.until(() => this.notices(kind).length > 0, `a ${kind} notice`);
  }

  async untilExit(): Promise<ExitStatus> {
    await this.done;
    if (this.error) throw this.error;
    if (!this.exit) throw new Error("stream ended without an exit event");
    return this.exit;
  }

  private poke(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** State letter of a process from /proc (R, S, T for stopped ...). */
export function processState(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]!;
}

/**
 * Resolves once the process is in `state` (a signal takes effect when the target next runs; there
 * is no event for it), or rejects after `ms`.
 */
export async function untilProcessState(pid: number, state: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (processState(pid) !== state) {
    if (Date.now() > deadline) throw new Error(`process ${pid} is ${processState(pid)}, not ${state}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
