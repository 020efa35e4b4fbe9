/**
 * Job records and the durable queue (table `jobs`, migration 0005). Every state change is one
 * guarded UPDATE (`WHERE status = ...`), so two replicas (or a cancel racing a start) can never both
 * move a job: the loser's update matches no row.
 */
import { invalidArgument } from "../errors/gateway-error.js";
import type { Queryable } from "../storage/database.js";
import { keysetPage } from "../storage/page-token.js";
import type { CallbackAttempt, JobFailureReason, JobRecord, JobSpec, JobStatus, JobUsage } from "./types.js";

/** The replica that claims jobs: its id for this run, and a key that survives its restarts. */
export interface JobOwner {
  instanceId: string;
  nodeKey: string;
  replicaAddress: string;
}

interface Row {
  id: string;
  status: JobStatus;
  spec: JobSpec | string;
  request_id: string | null;
  trigger_id: string;
  retry_of_job_id: string;
  replica_address: string;
  cancel_requested: string | null;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  updated_at: Date;
  duration_ms: string | number;
  exit_code: number | null;
  stdout?: string;
  stderr?: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  output?: unknown;
  output_files?: Record<string, string> | string | null;
  summary: string;
  final_message: string;
  error: string;
  failure_reason: JobFailureReason | null;
  usage: JobUsage | string | null;
  thread_id: string;
  workspace: string;
  output_path: string;
  callback_attempts:
    | (Omit<CallbackAttempt, "attemptedAt" | "nextAttemptAt"> & {
        attemptedAt: string;
        nextAttemptAt?: string;
      })[]
    | string;
}

const BASE_COLUMNS = `id, status, spec, request_id, trigger_id, retry_of_job_id, replica_address, cancel_requested,
  created_at, started_at, completed_at, updated_at, duration_ms, exit_code, stdout_truncated, stderr_truncated,
  summary, final_message, error, failure_reason, usage, thread_id, workspace, output_path, callback_attempts`;
/** With captured output: GetJob. ListJobs leaves the large columns out. */
const FULL_COLUMNS = `${BASE_COLUMNS}, stdout, stderr, output, output_files`;

const json = <T>(v: T | string): T => (typeof v === "string" ? (JSON.parse(v) as T) : v);
const date = (v: Date | null): Date | undefined => (v === null ? undefined : new Date(v));

function toRecord(r: Row): JobRecord & { cancelRequested?: string } {
  const attempts = json(r.callback_attempts).map((a) => ({
    ...a,
    attemptedAt: new Date(a.attemptedAt),
    nextAttemptAt: a.nextAttemptAt ? new Date(a.nextAttemptAt) : undefined,
  }));
  return {
    id: r.id,
    status: r.status,
    spec: json(r.spec),
    createdAt: new Date(r.created_at),
    startedAt: date(r.started_at),
    completedAt: date(r.completed_at),
    updatedAt: new Date(r.updated_at),
    durationMs: Number(r.duration_ms),
    exitCode: r.exit_code ?? undefined,
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? "",
    stdoutTruncated: r.stdout_truncated,
    stderrTruncated: r.stderr_truncated,
    output: r.output === null || r.output === undefined ? undefined : json(r.output as string),
    ...(r.output_files ? { outputFiles: json(r.output_files) } : {}),
    summary: r.summary,
    finalMessage: r.final_message,
    error: r.error,
    failureReason: r.failure_reason ?? undefined,
    usage: r.usage === null ? undefined : json(r.usage),
    threadId: r.thread_id,
    workspace: r.workspace,
    outputPath: r.output_path,
    replicaAddress: r.replica_address,
    triggerId: r.trigger_id,
    retryOfJobId: r.retry_of_job_id,
    callbackAttempts: attempts,
    queuePosition: 0,
    requestId: r.request_id ?? "",
    cancelRequested: r.cancel_requested ?? undefined,
  };
}

export async function insertJob(db: Queryable, j: JobRecord): Promise<JobRecord> {
  // A retried SubmitJob with the same request id gets the job the first call created.
  const r = await db.query<Row>(
    `INSERT INTO jobs (id, status, spec, labels, request_id, trigger_id, retry_of_job_id, created_at, updated_at)
     VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7, $8, $8)
     ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING
     RETURNING ${FULL_COLUMNS}`,
    [
      j.id,
      j.status,
      JSON.stringify(j.spec),
      JSON.stringify(j.spec.labels ?? {}),
      j.requestId || null,
      j.triggerId,
      j.retryOfJobId,
      j.createdAt,
    ],
  );
  if (r.rows[0]) return toRecord(r.rows[0]);
  const existing = await db.query<Row>(`SELECT ${FULL_COLUMNS} FROM jobs WHERE request_id = $1`, [j.requestId]);
  return toRecord(existing.rows[0]!);
}

export async function getJobRecord(
  db: Queryable,
  id: string,
): Promise<(JobRecord & { cancelRequested?: string }) | undefined> {
  const r = await db.query<Row>(`SELECT ${FULL_COLUMNS} FROM jobs WHERE id = $1`, [id]);
  if (!r.rows[0]) return undefined;
  const rec = toRecord(r.rows[0]);
  if (rec.status === "pending") rec.queuePosition = await queuePosition(db, rec);
  return rec;
}

/** Jobs ahead of this one in the queue. */
async function queuePosition(db: Queryable, j: JobRecord): Promise<number> {
  const r = await db.query<{ n: string | number }>(
    `SELECT count(*) AS n FROM jobs WHERE status = 'pending' AND (created_at, id) < ($1, $2)`,
    [j.createdAt, j.id],
  );
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Claims up to `limit` pending jobs for this replica, oldest first. SKIP LOCKED: replicas claiming
 * at the same time take different rows instead of waiting for each other.
 */
export async function claimPendingJobs(db: Queryable, owner: JobOwner, limit: number): Promise<JobRecord[]> {
  if (limit <= 0) return [];
  const r = await db.query<Row>(
    // A CTE, not `WHERE id IN (SELECT ... LIMIT n)`: Postgres may run such a subquery more than
    // once and update more than n rows (measured here: 5 claimed with a limit of 2).
    `WITH next AS (SELECT id FROM jobs WHERE status = 'pending' ORDER BY created_at, id
                    LIMIT $5 FOR UPDATE SKIP LOCKED)
     UPDATE jobs SET status = 'running', started_at = now(), updated_at = now(), heartbeat_at = now(),
            instance_id = $1, node_key = $2, replica_address = $3, owner_pid = $4
       FROM next WHERE jobs.id = next.id AND jobs.status = 'pending'
     RETURNING ${FULL_COLUMNS.replace(/(^|, )(\w+)/g, "$1jobs.$2")}`,
    [owner.instanceId, owner.nodeKey, owner.replicaAddress, process.pid, limit],
  );
  return r.rows.map(toRecord).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
}

/** Fields a running job fills in as it goes. */
export interface JobProgress {
  threadId?: string;
  workspace?: string;
  outputPath?: string;
}

export async function recordProgress(db: Queryable, id: string, p: JobProgress): Promise<void> {
  await db.query(
    `UPDATE jobs SET thread_id = COALESCE($2, thread_id), workspace = COALESCE($3, workspace),
            output_path = COALESCE($4, output_path), updated_at = now()
      WHERE id = $1`,
    [id, p.threadId ?? null, p.workspace ?? null, p.outputPath ?? null],
  );
}

/** How a job ended, written once. */
export type JobOutcome = Pick<
  JobRecord,
  | "exitCode"
  | "stdout"
  | "stderr"
  | "stdoutTruncated"
  | "stderrTruncated"
  | "output"
  | "outputFiles"
  | "summary"
  | "finalMessage"
  | "error"
  | "failureReason"
  | "usage"
  | "threadId"
  | "workspace"
  | "outputPath"
> & { status: Extract<JobStatus, "succeeded" | "failed" | "canceled" | "interrupted"> };

/** Ends a running job; false when it was no longer running (another replica's watchdog got there first). */
export async function finishJob(db: Queryable, id: string, o: JobOutcome): Promise<boolean> {
  const r = await db.query(
    `UPDATE jobs SET status = $2, exit_code = $3, stdout = $4, stderr = $5, stdout_truncated = $6,
            stderr_truncated = $7, output = $8::jsonb, summary = $9, final_message = $10, error = $11,
            failure_reason = $12, usage = $13::jsonb, thread_id = $14, workspace = $15, output_path = $16,
            output_files = $17::jsonb, completed_at = now(), updated_at = now(),
            duration_ms = GREATEST(0, (EXTRACT(EPOCH FROM (now() - COALESCE(started_at, now()))) * 1000)::bigint),
            heartbeat_at = NULL
      WHERE id = $1 AND status = 'running'`,
    [
      id,
      o.status,
      o.exitCode ?? null,
      o.stdout,
      o.stderr,
      o.stdoutTruncated,
      o.stderrTruncated,
      o.output === undefined ? null : JSON.stringify(o.output),
      o.summary,
      o.finalMessage,
      o.error,
      o.failureReason ?? null,
      o.usage ? JSON.stringify(o.usage) : null,
      o.threadId,
      o.workspace,
      o.outputPath,
      o.outputFiles === undefined ? null : JSON.stringify(o.outputFiles),
    ],
  );
  return r.rowCount > 0;
}

/** A pending job is canceled at once; true when it was. */
export async function cancelPendingJob(db: Queryable, id: string, reason: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE jobs SET status = 'canceled', error = $2, completed_at = now(), updated_at = now()
      WHERE id = $1 AND status = 'pending'`,
    [id, reason],
  );
  return r.rowCount > 0;
}

/** A running job on another replica: that replica sees the request at its next heartbeat. */
export async function requestCancel(db: Queryable, id: string, reason: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE jobs SET cancel_requested = $2, updated_at = now() WHERE id = $1 AND status = 'running'`,
    [id, reason],
  );
  return r.rowCount > 0;
}

/** Keeps this replica's running jobs alive; returns those with a cancel request from elsewhere. */
export async function heartbeat(
  db: Queryable,
  instanceId: string,
  ids: string[],
): Promise<{ id: string; reason: string }[]> {
  if (ids.length === 0) return [];
  const r = await db.query<{ id: string; cancel_requested: string | null }>(
    `UPDATE jobs SET heartbeat_at = now() WHERE id = ANY($1::text[]) AND instance_id = $2 AND status = 'running'
      RETURNING id, cancel_requested`,
    [ids, instanceId],
  );
  return r.rows.filter((x) => x.cancel_requested !== null).map((x) => ({ id: x.id, reason: x.cancel_requested! }));
}

const INTERRUPT = `UPDATE jobs SET status = 'interrupted', error = $1, completed_at = now(), updated_at = now(),
            heartbeat_at = NULL,
            duration_ms = GREATEST(0, (EXTRACT(EPOCH FROM (now() - COALESCE(started_at, now()))) * 1000)::bigint)
      WHERE status = 'running'`;

/**
 * At start: this node's running jobs (same host and DATA_DIR) whose agentgate process is gone (a
 * crash, a SIGKILL) are 'interrupted' at once, without waiting for their heartbeat to go stale. A
 * replica sharing the node key that still runs keeps its jobs. Returns the ids.
 */
export async function interruptOrphanedJobs(
  db: Queryable,
  owner: JobOwner,
  isAlive: (pid: number) => boolean,
  message: string,
): Promise<string[]> {
  const r = await db.query<{ instance_id: string; owner_pid: number }>(
    `SELECT DISTINCT instance_id, owner_pid FROM jobs WHERE status = 'running' AND node_key = $1 AND instance_id <> $2`,
    [owner.nodeKey, owner.instanceId],
  );
  const dead = r.rows.filter((x) => !isAlive(x.owner_pid)).map((x) => x.instance_id);
  if (dead.length === 0) return [];
  const u = await db.query<{ id: string }>(`${INTERRUPT} AND instance_id = ANY($2::text[]) RETURNING id`, [
    message,
    dead,
  ]);
  return u.rows.map((x) => x.id);
}

/** Any replica: running jobs whose heartbeat is older than `staleMs` (their replica died for good). */
export async function interruptStaleJobs(db: Queryable, staleMs: number, message: string): Promise<string[]> {
  const r = await db.query<{ id: string }>(
    `${INTERRUPT} AND heartbeat_at < now() - make_interval(secs => $2) RETURNING id`,
    [message, staleMs / 1000],
  );
  return r.rows.map((x) => x.id);
}

export async function setCallbackAttempts(db: Queryable, id: string, attempts: CallbackAttempt[]): Promise<void> {
  await db.query(`UPDATE jobs SET callback_attempts = $2::jsonb WHERE id = $1`, [id, JSON.stringify(attempts)]);
}

/** Retention: finished jobs older than `seconds` are deleted. */
export async function deleteExpiredJobs(db: Queryable, seconds: number): Promise<number> {
  const r = await db.query(
    `DELETE FROM jobs WHERE completed_at IS NOT NULL AND completed_at < now() - make_interval(secs => $1)`,
    [seconds],
  );
  return r.rowCount;
}

export const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SIZE = 50;

export interface ListJobsQuery {
  pageSize?: number;
  pageToken?: string;
  statuses?: JobStatus[];
  labels?: Record<string, string>;
  triggerId?: string;
  threadId?: string;
}

/** Newest first, without captured output; the page token is the (created_at, id) of the last row. */
export async function listJobRecords(
  db: Queryable,
  q: ListJobsQuery,
): Promise<{ jobs: JobRecord[]; nextPageToken: string }> {
  if (q.pageSize !== undefined && q.pageSize > MAX_PAGE_SIZE)
    throw invalidArgument(`page_size must be at most ${MAX_PAGE_SIZE}`, "page_size");
  const size = q.pageSize || DEFAULT_PAGE_SIZE;
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.statuses?.length) {
    params.push(q.statuses);
    where.push(`status = ANY($${params.length}::text[])`);
  }
  if (q.labels && Object.keys(q.labels).length) {
    params.push(JSON.stringify(q.labels));
    where.push(`labels @> $${params.length}::jsonb`);
  }
  if (q.triggerId) {
    params.push(q.triggerId);
    where.push(`trigger_id = $${params.length}`);
  }
  if (q.threadId) {
    params.push(q.threadId);
    where.push(`thread_id = $${params.length}`);
  }
  const page = await keysetPage(db, {
    columns: BASE_COLUMNS,
    from: "jobs",
    where,
    params,
    pageToken: q.pageToken,
    pageSize: size,
    order: "newest",
    toRecord,
  });
  return { jobs: page.items, nextPageToken: page.nextPageToken };
}

/** Thread ids with their jobs, for sessions that agentgate ran. */
export async function jobsOfThread(db: Queryable, threadId: string): Promise<JobRecord[]> {
  const r = await db.query<Row>(
    `SELECT ${FULL_COLUMNS} FROM jobs WHERE thread_id = $1 ORDER BY created_at, id LIMIT 1000`,
    [threadId],
  );
  return r.rows.map(toRecord);
}
