/**
 * The endpoint store's race-critical statements, on PGlite and (with TEST_DATABASE_URL) on a Postgres
 * server shared by two replicas: one endpoint per route however many dream it at once, a finished
 * version validated by exactly one replica, expiry and re-dreams claimed once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EndpointStore, isUniqueViolation, type DreamInputs } from "../../src/endpoints/endpoint-store.js";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { TEST_DATABASE_URL, createScratchDatabase } from "../storage/helpers.js";
import { openTestDatabase } from "../support/test-database.js";

const INPUTS: DreamInputs = {
  description: "Truncate a text",
  requestedExamples: [],
  callbackUrl: "",
  ttlMs: 60_000,
  model: "",
  labels: { team: "a" },
};

const HANDLER = {
  runtime: "node" as const,
  entrypoint: "handler.js",
  source: "process.stdout.write('{}')",
  sha256: "0".repeat(64),
  timeoutMs: 1000,
  limits: {},
  sandbox: "none" as const,
};

function suite(name: string, open: () => Promise<{ replicas: Database[]; close(): Promise<void> }>) {
  describe(name, () => {
    let replicas: Database[];
    let close: () => Promise<void>;
    let stores: EndpointStore[];

    beforeAll(async () => {
      ({ replicas, close } = await open());
      stores = replicas.map((db) => new EndpointStore(db));
    });
    afterAll(() => close?.());

    const store = (i: number) => stores[i % stores.length]!;

    it("keeps one endpoint per route (method + path key) under concurrent creates", async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          store(i).create({
            id: `ept_race_${i}`,
            method: "POST",
            path: i % 2 ? "/text/{id}" : "/text/{name}",
            pathKey: "/text/{}",
            requestId: "",
            ...INPUTS,
          }),
        ),
      );
      const ok = results.filter((r) => r.status === "fulfilled");
      expect(ok).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect(isUniqueViolation(r.reason)).toBe(true);
      expect(await store(0).count()).toBe(1);
      const id = await store(1).idByRoute("POST", "/text/{}");
      expect(id).toMatch(/^ept_race_/);
    });

    it("lets exactly one replica claim a finished version, then completes it READY with an expiry", async () => {
      const id = (await store(0).idByRoute("POST", "/text/{}"))!;
      const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => store(i).claimVersion(id, 1, 60_000)));
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect((await store(1).get(id, { versions: false }))!.status).toBe("validating");
      expect(
        await store(1).completeVersion(id, 1, {
          status: "ready",
          operation: { responses: {} },
          handler: HANDLER,
          examples: [],
        }),
      ).toBe(true);
      // A second completion (a late replica) changes nothing.
      expect(
        await store(0).completeVersion(id, 1, {
          status: "failed",
          examples: [],
          failures: [{ kind: "timeout", message: "late" }],
        }),
      ).toBe(false);
      const rec = (await store(0).get(id, { versions: true }))!;
      expect(rec.status).toBe("ready");
      expect(rec.servedVersion).toBe(1);
      expect(rec.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 50_000);
      expect(rec.versions.map((v) => [v.version, v.status])).toEqual([[1, "ready"]]);
    });

    it("starts a re-dream once however many replicas try, and keeps serving the old version", async () => {
      const id = (await store(0).idByRoute("POST", "/text/{}"))!;
      const versions = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          store(i).startVersion(id, 1, "dreaming", "", { ...INPUTS, description: `v2 ${i}` }),
        ),
      );
      expect(versions.filter((v) => v !== undefined)).toEqual([2]);
      const rec = (await store(1).get(id, { versions: false }))!;
      expect(rec.latestVersion).toBe(2);
      expect(rec.servedVersion).toBe(1);
      expect((await store(0).servedByRoute("POST", ["/text/{}"]))?.id).toBe(id);
      await store(0).claimVersion(id, 2, 60_000);
      await store(0).completeVersion(id, 2, {
        status: "failed",
        examples: [],
        failures: [{ kind: "timeout", message: "slow" }],
      });
      // A failed re-dream of a fresh endpoint leaves it READY on the old version.
      const after = (await store(1).get(id, { versions: true }))!;
      expect(after.status).toBe("ready");
      expect(after.servedVersion).toBe(1);
      expect(after.versions.map((v) => v.status)).toEqual(["failed", "ready"]);
    });

    it("expires due endpoints once, and appends callback attempts without losing any", async () => {
      const id = (await store(0).idByRoute("POST", "/text/{}"))!;
      await replicas[0]!.query("UPDATE endpoints SET expires_at = now() - interval '1 second' WHERE id = $1", [id]);
      const swept = await Promise.all(Array.from({ length: 4 }, (_, i) => store(i).expireDue(0, false)));
      expect(swept.flat()).toEqual([id]);
      expect((await store(1).get(id, { versions: false }))!.status).toBe("expired");
      expect(await store(0).markStale(id)).toBe(true);
      expect(await store(1).markStale(id)).toBe(false);
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store(i).appendCallbackAttempt(id, {
            attempt: i + 1,
            event: "endpoint.ready",
            attemptedAt: new Date(),
            httpStatus: 204,
            error: "",
            delivered: true,
            durationMs: 1,
          }),
        ),
      );
      const rec = (await store(0).get(id, { versions: false }))!;
      expect(rec.callbackAttempts.map((a) => a.attempt).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    });

    it("deletes an endpoint with its versions", async () => {
      const id = (await store(0).idByRoute("POST", "/text/{}"))!;
      expect((await store(1).delete(id))?.id).toBe(id);
      expect(await store(0).get(id, { versions: true })).toBeUndefined();
      const left = await replicas[0]!.query("SELECT 1 FROM endpoint_versions WHERE endpoint_id = $1", [id]);
      expect(left.rows).toHaveLength(0);
      expect(await store(0).delete(id)).toBeUndefined();
    });
  });
}

suite("endpoint store on PGlite", async () => {
  const db = await openTestDatabase();
  return { replicas: [db], close: () => db.close() };
});

describe.skipIf(!TEST_DATABASE_URL)("two replicas on one Postgres server (TEST_DATABASE_URL)", () => {
  suite("endpoint store on Postgres", async () => {
    const scratch = await createScratchDatabase();
    const replicas: Database[] = [];
    for (let i = 0; i < 2; i++)
      replicas.push(await openDatabase({ dataDir: "", databaseUrl: scratch.url, connectRetryMs: 0, poolMax: 4 }));
    return {
      replicas,
      async close() {
        for (const db of replicas) await db.close();
        await scratch.drop();
      },
    };
  });
});
