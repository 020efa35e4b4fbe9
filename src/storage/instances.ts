/**
 * Replica registry (table `instances`, migration 0002). Each agentgate process registers its id and the
 * address other replicas can reach it on, then heartbeats; agents record the id of the replica that
 * spawned them, so any replica can look up where to route an attach. Times come from the database clock.
 */
import type { Queryable } from "./database.js";

export interface InstanceRecord {
  id: string;
  address: string;
  version: string;
  startedAt: Date;
  heartbeatAt: Date;
}

interface Row {
  id: string;
  address: string;
  version: string;
  started_at: Date;
  heartbeat_at: Date;
}

const COLUMNS = "id, address, version, started_at, heartbeat_at";

function toRecord(r: Row): InstanceRecord {
  return {
    id: r.id,
    address: r.address,
    version: r.version,
    startedAt: new Date(r.started_at),
    heartbeatAt: new Date(r.heartbeat_at),
  };
}

/** Inserts or replaces (same id: a restart) this replica's row; started_at and heartbeat_at are now(). */
export async function registerInstance(
  db: Queryable,
  instance: { id: string; address: string; version: string },
): Promise<InstanceRecord> {
  const r = await db.query<Row>(
    `INSERT INTO instances (id, address, version, started_at, heartbeat_at)
     VALUES ($1, $2, $3, now(), now())
     ON CONFLICT (id) DO UPDATE
       SET address = EXCLUDED.address, version = EXCLUDED.version,
           started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at
     RETURNING ${COLUMNS}`,
    [instance.id, instance.address, instance.version],
  );
  return toRecord(r.rows[0]!);
}

/**
 * Marks the replica alive. Returns false when its row is gone (e.g. pruned by another replica after a
 * long pause): the caller should registerInstance again.
 */
export async function heartbeatInstance(db: Queryable, id: string): Promise<boolean> {
  const r = await db.query("UPDATE instances SET heartbeat_at = now() WHERE id = $1", [id]);
  return r.rowCount > 0;
}

export async function getInstance(db: Queryable, id: string): Promise<InstanceRecord | undefined> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM instances WHERE id = $1`, [id]);
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

/** All registered replicas, or only those that heartbeated within `aliveWithinMs`. Ordered by id. */
export async function listInstances(db: Queryable, opts: { aliveWithinMs?: number } = {}): Promise<InstanceRecord[]> {
  const r =
    opts.aliveWithinMs === undefined
      ? await db.query<Row>(`SELECT ${COLUMNS} FROM instances ORDER BY id`)
      : await db.query<Row>(
          `SELECT ${COLUMNS} FROM instances
           WHERE heartbeat_at > now() - make_interval(secs => $1::double precision / 1000)
           ORDER BY id`,
          [opts.aliveWithinMs],
        );
  return r.rows.map(toRecord);
}

/** Removes the row (graceful shutdown). Returns whether it existed. */
export async function unregisterInstance(db: Queryable, id: string): Promise<boolean> {
  const r = await db.query("DELETE FROM instances WHERE id = $1", [id]);
  return r.rowCount > 0;
}

/** Deletes replicas silent for longer than `olderThanMs`; returns how many. */
export async function pruneInstances(db: Queryable, olderThanMs: number): Promise<number> {
  const r = await db.query(
    "DELETE FROM instances WHERE heartbeat_at < now() - make_interval(secs => $1::double precision / 1000)",
    [olderThanMs],
  );
  return r.rowCount;
}
