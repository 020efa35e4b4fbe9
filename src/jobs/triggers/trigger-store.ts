/**
 * Trigger records in the database (table `job_triggers`, migration 0006). Several replicas may share
 * the table: a timed occurrence is claimed with a compare-and-set on (next_fire_at, updated_at), so only
 * the replica whose UPDATE matched fires it (claimDue); a file-change firing is claimed per debounce
 * window on last_fired_at (claimFileChangeFiring).
 */
import type { Queryable } from "../../storage/database.js";
import { keysetPage } from "../../storage/page-token.js";
import type { JobStatus } from "../types.js";
import type { ListTriggersQuery, TriggerRecord, TriggerSchedule, TriggerSpec } from "./trigger-types.js";

/** The spec as stored in jsonb: dates as ISO strings. */
type StoredSchedule =
  | { kind: "interval"; intervalMs: number; startAt?: string }
  | { kind: "cron"; expression: string; timeZone: string }
  | { kind: "once"; at: string }
  | { kind: "file_change"; root: string; paths: string[]; globs: string[]; debounceMs: number };
type StoredSpec = Omit<TriggerSpec, "schedule"> & { schedule: StoredSchedule };

interface Row {
  id: string;
  spec: StoredSpec | string;
  created_at: Date;
  updated_at: Date;
  next_fire_at: Date | null;
  last_fired_at: Date | null;
  last_job_id: string;
  last_status: JobStatus | null;
  last_error: string;
  // bigint: node-postgres returns it as a string, PGlite as a number.
  fire_count: string | number;
}

const COLUMNS = `id, spec, created_at, updated_at, next_fire_at, last_fired_at, last_job_id, last_status,
  last_error, fire_count`;

function toStoredSpec(spec: TriggerSpec): string {
  const s = spec.schedule;
  const schedule: StoredSchedule =
    s.kind === "interval"
      ? { kind: "interval", intervalMs: s.intervalMs, ...(s.startAt ? { startAt: s.startAt.toISOString() } : {}) }
      : s.kind === "once"
        ? { kind: "once", at: s.at.toISOString() }
        : s;
  return JSON.stringify({ ...spec, schedule });
}

function fromStoredSpec(v: StoredSpec | string): TriggerSpec {
  const spec = typeof v === "string" ? (JSON.parse(v) as StoredSpec) : v;
  const s = spec.schedule;
  const schedule: TriggerSchedule =
    s.kind === "interval"
      ? { kind: "interval", intervalMs: s.intervalMs, ...(s.startAt ? { startAt: new Date(s.startAt) } : {}) }
      : s.kind === "once"
        ? { kind: "once", at: new Date(s.at) }
        : s;
  return { ...spec, schedule };
}

const date = (v: Date | null): Date | undefined => (v === null ? undefined : new Date(v));

function toRecord(r: Row): TriggerRecord {
  return {
    id: r.id,
    spec: fromStoredSpec(r.spec),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    lastFiredAt: date(r.last_fired_at),
    lastJobId: r.last_job_id,
    lastStatus: r.last_status ?? undefined,
    lastError: r.last_error,
    nextFireAt: date(r.next_fire_at),
    fireCount: Number(r.fire_count),
  };
}

/** false when a trigger with that id exists. */
export async function insertTrigger(db: Queryable, t: TriggerRecord): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO job_triggers (id, name, description, spec, disabled, created_at, updated_at, next_fire_at)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
    [
      t.id,
      t.spec.name,
      t.spec.description,
      toStoredSpec(t.spec),
      t.spec.disabled,
      t.createdAt,
      t.updatedAt,
      t.nextFireAt ?? null,
    ],
  );
  return r.rowCount > 0;
}

export async function getTrigger(db: Queryable, id: string): Promise<TriggerRecord | undefined> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM job_triggers WHERE id = $1`, [id]);
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

/**
 * Replaces the settings. `expectUpdatedAt` makes it a compare-and-set (undefined when another writer
 * changed the row since it was read, so a read-modify-write with an update mask loses nothing).
 */
export async function updateTriggerSpec(
  db: Queryable,
  id: string,
  spec: TriggerSpec,
  updatedAt: Date,
  nextFireAt: Date | undefined,
  expectUpdatedAt?: Date,
): Promise<TriggerRecord | undefined> {
  const params: unknown[] = [
    id,
    spec.name,
    spec.description,
    toStoredSpec(spec),
    spec.disabled,
    updatedAt,
    nextFireAt ?? null,
  ];
  let cas = "";
  if (expectUpdatedAt) {
    params.push(expectUpdatedAt);
    cas = ` AND updated_at = $${params.length}`;
  }
  const r = await db.query<Row>(
    `UPDATE job_triggers SET name = $2, description = $3, spec = $4::jsonb, disabled = $5, updated_at = $6,
            next_fire_at = $7
      WHERE id = $1${cas}
      RETURNING ${COLUMNS}`,
    params,
  );
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

export async function deleteTrigger(db: Queryable, id: string): Promise<boolean> {
  const r = await db.query("DELETE FROM job_triggers WHERE id = $1", [id]);
  return r.rowCount > 0;
}

export const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SIZE = 50;

/** Oldest first; the page token is the (created_at, id) of the last row, opaque to callers. */
export async function listTriggers(
  db: Queryable,
  q: ListTriggersQuery = {},
): Promise<{ triggers: TriggerRecord[]; nextPageToken: string }> {
  const size = q.pageSize ? Math.min(Math.max(1, Math.floor(q.pageSize)), MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE;
  const page = await keysetPage(db, {
    columns: COLUMNS,
    from: "job_triggers",
    where: [],
    params: [],
    pageToken: q.pageToken,
    pageSize: size,
    order: "oldest",
    toRecord,
  });
  return { triggers: page.items, nextPageToken: page.nextPageToken };
}

/** Enabled file-change triggers: every replica watches them (see TriggerScheduler). */
export async function listFileChangeTriggers(db: Queryable): Promise<TriggerRecord[]> {
  const r = await db.query<Row>(
    `SELECT ${COLUMNS} FROM job_triggers
      WHERE NOT disabled AND spec->'schedule'->>'kind' = 'file_change' ORDER BY created_at, id`,
  );
  return r.rows.map(toRecord);
}

/** The earliest pending firing of an enabled trigger, for the scheduler's timer. */
export async function earliestNextFire(db: Queryable): Promise<Date | undefined> {
  const r = await db.query<{ t: Date | null }>(
    "SELECT min(next_fire_at) AS t FROM job_triggers WHERE NOT disabled AND next_fire_at IS NOT NULL",
  );
  return date(r.rows[0]?.t ?? null);
}

export interface ClaimedOccurrence {
  /** The record after the claim (nextFireAt already advanced). */
  trigger: TriggerRecord;
  /** The occurrence this caller won. */
  occurrence: Date;
}

/**
 * Claims the due occurrences (next_fire_at <= now) of enabled triggers: for each, `computeNext` gives
 * the following firing (undefined: none, e.g. a one-shot trigger) and a compare-and-set moves
 * next_fire_at there. The UPDATE matches only while next_fire_at and updated_at are what this replica
 * read, so when replicas race for the same occurrence exactly one UPDATE matches; the others get no
 * row back and skip it. No transaction or row lock is held while computing, which keeps PGlite (one
 * connection) and Postgres on the same code path.
 */
export async function claimDue(
  db: Queryable,
  now: Date,
  limit: number,
  computeNext: (t: TriggerRecord, now: Date) => Date | undefined,
): Promise<ClaimedOccurrence[]> {
  const due = await db.query<Row>(
    `SELECT ${COLUMNS} FROM job_triggers
      WHERE NOT disabled AND next_fire_at IS NOT NULL AND next_fire_at <= $1
      ORDER BY next_fire_at LIMIT $2`,
    [now, limit],
  );
  const claimed: ClaimedOccurrence[] = [];
  for (const row of due.rows) {
    const t = toRecord(row);
    const occurrence = t.nextFireAt!;
    const next = computeNext(t, now);
    const r = await db.query<Row>(
      `UPDATE job_triggers SET next_fire_at = $2
        WHERE id = $1 AND next_fire_at = $3 AND updated_at = $4 AND NOT disabled
        RETURNING ${COLUMNS}`,
      [t.id, next ?? null, occurrence, t.updatedAt],
    );
    if (r.rows[0]) claimed.push({ trigger: toRecord(r.rows[0]), occurrence });
  }
  return claimed;
}

/**
 * A file-change firing: one per trigger per debounce window across replicas. Replicas that watch the
 * same files (same host or shared volume) see the same change and would each fire; the first to set
 * last_fired_at wins and the others, finding it within the window, do not fire.
 */
export async function claimFileChangeFiring(db: Queryable, id: string, now: Date, windowMs: number): Promise<boolean> {
  const r = await db.query(
    `UPDATE job_triggers SET last_fired_at = $2
      WHERE id = $1 AND NOT disabled AND (last_fired_at IS NULL OR last_fired_at <= $3)`,
    [id, now, new Date(now.getTime() - windowMs)],
  );
  return r.rowCount > 0;
}

/** A firing that submitted a job (jobId) or failed to (error). */
export async function recordFiring(
  db: Queryable,
  id: string,
  f: { firedAt: Date; jobId?: string; status?: JobStatus; error?: string },
): Promise<void> {
  if (f.jobId) {
    await db.query(
      `UPDATE job_triggers SET last_fired_at = $2, fire_count = fire_count + 1, last_job_id = $3, last_status = $4,
              last_error = ''
        WHERE id = $1`,
      [id, f.firedAt, f.jobId, f.status ?? null],
    );
  } else {
    await db.query(
      `UPDATE job_triggers SET last_fired_at = $2, fire_count = fire_count + 1, last_error = $3 WHERE id = $1`,
      [id, f.firedAt, f.error ?? ""],
    );
  }
}

export async function recordError(db: Queryable, id: string, error: string): Promise<void> {
  await db.query("UPDATE job_triggers SET last_error = $2 WHERE id = $1", [id, error]);
}

/** The trigger's last job changed status; a report about an older job is ignored (false). */
export async function recordJobStatus(
  db: Queryable,
  id: string,
  jobId: string,
  status: JobStatus,
  error: string,
): Promise<boolean> {
  const r = await db.query(
    "UPDATE job_triggers SET last_status = $3, last_error = $4 WHERE id = $1 AND last_job_id = $2",
    [id, jobId, status, error],
  );
  return r.rowCount > 0;
}
