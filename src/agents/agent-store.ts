/**
 * Agent records in the database (table `agents`, migration 0004). The supervisor owns the live
 * state in memory and writes it through here; records of agents that are not live (ended, or from
 * another replica or an earlier run) are read from here.
 */
import type { Queryable } from "../storage/database.js";
import { keysetPage } from "../storage/page-token.js";
import type { SandboxDriverName } from "../sandbox/types.js";
import type {
  AgentLimits,
  AgentRecord,
  AgentState,
  ExitReason,
  ListAgentsQuery,
  TerminalSize,
  WatchRule,
} from "./types.js";

/** Where an agent runs: the replica's id for this run, and a key that survives its restarts. */
export interface AgentOwner {
  instanceId: string;
  /** Host name + DATA_DIR: the same after a restart, different for every replica. */
  nodeKey: string;
}

interface StoredSpec {
  argv: string[];
  workingDirectory: string;
  freshWorkspace: boolean;
  keepWorkspace: boolean;
  sandbox: SandboxDriverName;
  networkAllowed: boolean;
  limits: AgentLimits;
  bypassApprovals: boolean;
  watchRules: WatchRule[];
  term: string;
}

interface Row {
  id: string;
  name: string;
  labels: Record<string, string> | string;
  spec: StoredSpec | string;
  state: AgentState;
  pid: number;
  replica_address: string;
  cols: number;
  rows: number;
  exit_code: number | null;
  exit_signal: number | null;
  exit_reason: ExitReason | null;
  exit_message: string | null;
  ended_at: Date | null;
  // bigint: node-postgres returns it as a string, PGlite as a number.
  output_bytes: string | number;
  log_start_offset: string | number;
  input_bytes: string | number;
  paused_by_rule: string;
  created_at: Date;
  started_at: Date | null;
  last_activity_at: Date | null;
}

const COLUMNS = `id, name, labels, spec, state, pid, replica_address, cols, rows, exit_code, exit_signal,
  exit_reason, exit_message, ended_at, output_bytes, log_start_offset, input_bytes, paused_by_rule,
  created_at, started_at, last_activity_at`;

const json = <T>(v: T | string): T => (typeof v === "string" ? (JSON.parse(v) as T) : v);
const date = (v: Date | null): Date | undefined => (v === null ? undefined : new Date(v));

function toRecord(r: Row): AgentRecord {
  const spec = json<StoredSpec>(r.spec);
  const size: TerminalSize = { cols: r.cols, rows: r.rows };
  return {
    id: r.id,
    name: r.name,
    labels: json<Record<string, string>>(r.labels),
    state: r.state,
    pid: r.pid,
    replicaAddress: r.replica_address,
    ...spec,
    size,
    createdAt: new Date(r.created_at),
    startedAt: date(r.started_at),
    lastActivityAt: date(r.last_activity_at),
    exit:
      r.exit_reason === null
        ? undefined
        : {
            exitCode: r.exit_code ?? undefined,
            signal: r.exit_signal ?? 0,
            signalName: "",
            reason: r.exit_reason,
            message: r.exit_message ?? "",
            endedAt: new Date(r.ended_at ?? r.created_at),
          },
    outputBytes: Number(r.output_bytes),
    logStartOffset: Number(r.log_start_offset),
    inputBytes: Number(r.input_bytes),
    attachedClients: 0,
    pausedByRule: r.paused_by_rule,
  };
}

function specOf(a: AgentRecord): StoredSpec {
  return {
    argv: a.argv,
    workingDirectory: a.workingDirectory,
    freshWorkspace: a.freshWorkspace,
    keepWorkspace: a.keepWorkspace,
    sandbox: a.sandbox,
    networkAllowed: a.networkAllowed,
    limits: a.limits,
    bypassApprovals: a.bypassApprovals,
    watchRules: a.watchRules,
    term: a.term,
  };
}

export async function insertAgent(db: Queryable, a: AgentRecord, owner: AgentOwner): Promise<void> {
  await db.query(
    `INSERT INTO agents (id, name, labels, spec, state, pid, instance_id, node_key, replica_address, cols, rows,
                         created_at)
     VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      a.id,
      a.name,
      JSON.stringify(a.labels),
      JSON.stringify(specOf(a)),
      a.state,
      a.pid,
      owner.instanceId,
      owner.nodeKey,
      a.replicaAddress,
      a.size.cols,
      a.size.rows,
      a.createdAt,
    ],
  );
}

/** Writes the mutable part of a record (state, pid, size, exit, offsets, clocks). */
export async function updateAgent(db: Queryable, a: AgentRecord): Promise<void> {
  await db.query(
    `UPDATE agents SET state = $2, pid = $3, replica_address = $4, cols = $5, rows = $6, exit_code = $7,
            exit_signal = $8, exit_reason = $9, exit_message = $10, ended_at = $11, output_bytes = $12,
            log_start_offset = $13, input_bytes = $14, paused_by_rule = $15, started_at = $16,
            last_activity_at = $17
      WHERE id = $1`,
    [
      a.id,
      a.state,
      a.pid,
      a.replicaAddress,
      a.size.cols,
      a.size.rows,
      a.exit?.exitCode ?? null,
      a.exit ? a.exit.signal : null,
      a.exit?.reason ?? null,
      a.exit?.message ?? null,
      a.exit?.endedAt ?? null,
      a.outputBytes,
      a.logStartOffset,
      a.inputBytes,
      a.pausedByRule,
      a.startedAt ?? null,
      a.lastActivityAt ?? null,
    ],
  );
}

export async function getAgentRecord(db: Queryable, id: string): Promise<AgentRecord | undefined> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM agents WHERE id = $1`, [id]);
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

export async function deleteAgentRecord(db: Queryable, id: string): Promise<boolean> {
  const r = await db.query("DELETE FROM agents WHERE id = $1", [id]);
  return r.rowCount > 0;
}

export const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SIZE = 50;

/** Newest first; the page token is the (created_at, id) of the last row, opaque to callers. */
export async function listAgentRecords(
  db: Queryable,
  q: ListAgentsQuery,
): Promise<{ agents: AgentRecord[]; nextPageToken: string }> {
  const size = q.pageSize ? Math.min(q.pageSize, MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE;
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.states?.length) {
    params.push(q.states);
    where.push(`state = ANY($${params.length}::text[])`);
  }
  if (q.labels && Object.keys(q.labels).length) {
    params.push(JSON.stringify(q.labels));
    where.push(`labels @> $${params.length}::jsonb`);
  }
  const page = await keysetPage(db, {
    columns: COLUMNS,
    from: "agents",
    where,
    params,
    pageToken: q.pageToken,
    pageSize: size,
    order: "newest",
    toRecord,
  });
  return { agents: page.items, nextPageToken: page.nextPageToken };
}

/**
 * Start-up recovery: agents this node recorded as not ended, from an earlier run (a crash or a kill
 * that skipped close()), are marked ended. Returns their ids so the caller can fix their offsets.
 */
export async function markOrphansStopped(db: Queryable, owner: AgentOwner, message: string): Promise<AgentRecord[]> {
  const r = await db.query<Row>(
    `UPDATE agents SET state = 'exited', pid = 0, exit_reason = 'supervisor_stopped', exit_message = $3,
            exit_code = NULL, exit_signal = 0, ended_at = now(), paused_by_rule = ''
      WHERE node_key = $1 AND instance_id <> $2 AND state <> 'exited'
      RETURNING ${COLUMNS}`,
    [owner.nodeKey, owner.instanceId, message],
  );
  return r.rows.map(toRecord);
}
