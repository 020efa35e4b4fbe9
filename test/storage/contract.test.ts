/** The same behaviour from both engines: what callers of Database may rely on. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/storage/database.js";
import {
  getInstance,
  heartbeatInstance,
  listInstances,
  pruneInstances,
  registerInstance,
  unregisterInstance,
} from "../../src/storage/instances.js";
import { openTestDatabase } from "../support/test-database.js";
import { TEST_DATABASE_URL, createScratchDatabase } from "./helpers.js";

const engines = [
  { name: "pglite", skip: false },
  { name: "postgres", skip: !TEST_DATABASE_URL },
] as const;

describe.each(engines)("Database contract: $name", ({ name, skip }) => {
  let db: Database;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    if (skip) return;
    if (name === "pglite") {
      db = await openTestDatabase();
    } else {
      const scratch = await createScratchDatabase();
      drop = scratch.drop;
      db = await openDatabase({ dataDir: "", databaseUrl: scratch.url, connectRetryMs: 0 });
    }
    await db.exec("CREATE TABLE t (id int PRIMARY KEY, note text); CREATE TABLE u (n int8);");
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  it.skipIf(skip)("reports its kind", () => {
    expect(db.kind).toBe(name);
  });

  it.skipIf(skip)("uses $n parameters and reports rowCount for reads and writes", async () => {
    const ins = await db.query("INSERT INTO t (id, note) VALUES ($1, $2), ($3, $4)", [1, "a", 2, null]);
    expect(ins.rowCount).toBe(2);
    const upd = await db.query("UPDATE t SET note = $1 WHERE id >= $2", ["z", 1]);
    expect(upd.rowCount).toBe(2);
    const sel = await db.query<{ id: number; note: string }>("SELECT id, note FROM t ORDER BY id");
    expect(sel).toEqual({
      rows: [
        { id: 1, note: "z" },
        { id: 2, note: "z" },
      ],
      rowCount: 2,
    });
    expect((await db.query("DELETE FROM t WHERE id = $1", [99])).rowCount).toBe(0);
  });

  it.skipIf(skip)("returns the same JS types", async () => {
    await db.query("INSERT INTO u (n) VALUES ($1), ($2)", [5, 9007199254740993n]);
    const r = await db.query<Record<string, unknown>>(
      `SELECT count(*) AS c, 2::int8 AS i8, array[1, 2]::int8[] AS a8, 1.5::numeric AS num, true AS b,
              '{"k":[1]}'::jsonb AS j, '2024-01-02T03:04:05Z'::timestamptz AS ts, interval '1 day' AS iv,
              (SELECT max(n) FROM u) AS big`,
    );
    expect(r.rows[0]).toEqual({
      c: 1,
      i8: 2,
      a8: [1, 2],
      num: "1.5",
      b: true,
      j: { k: [1] },
      ts: new Date("2024-01-02T03:04:05Z"),
      iv: "1 day",
      big: 9007199254740993n,
    });
  });

  it.skipIf(skip)("commits a transaction and rolls one back when the callback throws", async () => {
    const v = await db.transaction(async (tx) => {
      await tx.query("INSERT INTO t (id) VALUES ($1)", [10]);
      await tx.exec("INSERT INTO t (id) VALUES (11); INSERT INTO t (id) VALUES (12);");
      return "done";
    });
    expect(v).toBe("done");
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO t (id) VALUES ($1)", [20]);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO t (id) VALUES ($1)", [21]);
        await tx.query("INSERT INTO t (id) VALUES ($1)", [10]); // duplicate key
      }),
    ).rejects.toThrow(/duplicate key/);
    const ids = await db.query<{ id: number }>("SELECT id FROM t WHERE id >= 10 ORDER BY id");
    expect(ids.rows.map((r) => r.id)).toEqual([10, 11, 12]);
  });

  it.skipIf(skip)("rejects using the root handle inside its own transaction, and tx after it ends", async () => {
    let leaked: { query(sql: string): Promise<unknown> } | undefined;
    await expect(
      db.transaction(async (tx) => {
        leaked = tx;
        await db.query("SELECT 1");
      }),
    ).rejects.toThrow(/inside a transaction callback of the same database: use the tx argument/);
    await expect(db.transaction(() => db.transaction(async () => 1))).rejects.toThrow(/use the tx argument/);
    await expect(leaked!.query("SELECT 1")).rejects.toThrow(/after the transaction finished/);
    expect((await db.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]); // not deadlocked
  });

  it.skipIf(skip)("serialises concurrent transactions without losing updates", async () => {
    await db.query("INSERT INTO t (id, note) VALUES (100, $1)", ["0"]);
    await Promise.all(
      Array.from({ length: 8 }, () =>
        db.transaction(async (tx) => {
          const r = await tx.query<{ note: string }>("SELECT note FROM t WHERE id = 100 FOR UPDATE");
          await tx.query("UPDATE t SET note = $1 WHERE id = 100", [String(Number(r.rows[0]!.note) + 1)]);
        }),
      ),
    );
    expect((await db.query("SELECT note FROM t WHERE id = 100")).rows).toEqual([{ note: "8" }]);
  });

  it.skipIf(skip)("registers replicas and tracks their heartbeats", async () => {
    const a = await registerInstance(db, { id: "replica-a", address: "http://10.0.0.1:8080", version: "0.1.0" });
    expect(a).toMatchObject({ id: "replica-a", address: "http://10.0.0.1:8080", version: "0.1.0" });
    expect(a.startedAt).toBeInstanceOf(Date);
    await registerInstance(db, { id: "replica-b", address: "http://10.0.0.2:8080", version: "0.1.0" });
    // Re-registering the same id (a restart) replaces the row.
    await registerInstance(db, { id: "replica-a", address: "http://10.0.0.9:8080", version: "0.2.0" });
    expect(await getInstance(db, "replica-a")).toMatchObject({ address: "http://10.0.0.9:8080", version: "0.2.0" });
    expect(await heartbeatInstance(db, "replica-a")).toBe(true);
    expect(await heartbeatInstance(db, "nobody")).toBe(false);
    await db.query("UPDATE instances SET heartbeat_at = now() - interval '5 minutes' WHERE id = 'replica-b'");
    expect((await listInstances(db, { aliveWithinMs: 60_000 })).map((i) => i.id)).toEqual(["replica-a"]);
    expect((await listInstances(db)).map((i) => i.id)).toEqual(["replica-a", "replica-b"]);
    expect(await pruneInstances(db, 60_000)).toBe(1);
    // Works inside a transaction too (helpers take any Queryable).
    await db.transaction((tx) => heartbeatInstance(tx, "replica-a"));
    expect(await unregisterInstance(db, "replica-a")).toBe(true);
    expect(await listInstances(db)).toEqual([]);
  });

  it.skipIf(skip)("reports health", async () => {
    const h = await db.health();
    expect(h).toMatchObject({ ok: true, kind: name });
    expect(typeof h.latencyMs).toBe("number");
  });
});
