import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Cron } from "croner";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import {
  CHANGED_PATHS_FILE,
  SKIPPED_OVERLAP,
  TriggerScheduler,
  type TriggerSchedulerOptions,
} from "../../src/jobs/triggers/trigger-scheduler.js";
import type { TriggerRecord } from "../../src/jobs/triggers/trigger-types.js";
import type { TriggerSpecInput } from "../../src/jobs/triggers/trigger-validate.js";
import type { JobStatus } from "../../src/jobs/types.js";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { TEST_DATABASE_URL, createScratchDatabase } from "../storage/helpers.js";
import { openTestDatabase } from "../support/test-database.js";

let db: Database;
let tmp: string;
let root: string;
let outside: string;
const schedulers: TriggerScheduler[] = [];

beforeEach(async () => {
  db = await openTestDatabase();
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "agentgate-triggers-")));
  root = path.join(tmp, "root");
  outside = path.join(tmp, "outside");
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
});

afterEach(async () => {
  for (const s of schedulers.splice(0)) await s.close();
  await db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Fixture {
  s: TriggerScheduler;
  submitted: TriggerRecord[];
}

/** A scheduler whose submit records the trigger it was called with and answers job_1, job_2 ... */
function scheduler(extra: Partial<TriggerSchedulerOptions> = {}, submitted: TriggerRecord[] = []): Fixture {
  const s = new TriggerScheduler({
    db,
    allowedRoots: [root],
    minIntervalMs: 50,
    pollMs: 100,
    isJobActive: async () => false,
    submit: async (t) => {
      submitted.push(t);
      return { jobId: `job_${submitted.length}`, status: "pending" as JobStatus };
    },
    ...extra,
  });
  schedulers.push(s);
  return { s, submitted };
}

const template = { prompt: "look at the repository" };
const spec = (schedule: TriggerSpecInput["schedule"], more: Partial<TriggerSpecInput> = {}): TriggerSpecInput => ({
  name: "t",
  schedule,
  jobTemplate: template,
  ...more,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(20);
  }
}

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
}

describe("validation", () => {
  it("rejects bad cron expressions, time zones, intervals and names", async () => {
    const { s } = scheduler({ minIntervalMs: undefined });
    let e = await rejection(s.create(spec({ kind: "cron", expression: "every tuesday" })));
    expect([e.kind, e.param]).toEqual(["invalid_argument", "spec.cron.expression"]);
    e = await rejection(s.create(spec({ kind: "cron", expression: "0 0 31 2 *" })));
    expect(e.message).toMatch(/never fires/);
    e = await rejection(s.create(spec({ kind: "cron", expression: "0 9 * * *", timeZone: "Mars/Olympus" })));
    expect([e.kind, e.param]).toEqual(["invalid_argument", "spec.cron.time_zone"]);
    e = await rejection(s.create(spec({ kind: "interval", intervalMs: 500 })));
    expect([e.kind, e.param]).toEqual(["invalid_argument", "spec.interval.interval"]);
    e = await rejection(s.create(spec({ kind: "interval", intervalMs: 367 * 24 * 3600 * 1000 })));
    expect(e.kind).toBe("invalid_argument");
    e = await rejection(s.create(spec({ kind: "once" })));
    expect(e.param).toBe("spec.once.at");
    e = await rejection(s.create({ ...spec({ kind: "interval", intervalMs: 5000 }), name: "" }));
    expect(e.param).toBe("spec.name");
    e = await rejection(s.create({ ...spec({ kind: "interval", intervalMs: 5000 }), name: "x".repeat(201) }));
    expect(e.param).toBe("spec.name");
    e = await rejection(s.create({ name: "no schedule", jobTemplate: template }));
    expect(e.kind).toBe("invalid_argument");

    const ok = await s.create(spec({ kind: "cron", expression: "0 9 * * *" }));
    expect(ok.spec.schedule).toEqual({ kind: "cron", expression: "0 9 * * *", timeZone: "UTC" });
  });

  it("confines file-change roots and paths to the allowed roots", async () => {
    const { s } = scheduler();
    fs.symlinkSync(outside, path.join(root, "link"));
    fs.mkdirSync(path.join(root, "src"));

    let e = await rejection(s.create(spec({ kind: "file_change", paths: ["../outside"] })));
    expect([e.kind, e.param]).toEqual(["permission_denied", "spec.file_change.paths[0]"]);
    expect(e.message).toContain("../outside");
    e = await rejection(s.create(spec({ kind: "file_change", paths: ["src", "link/new-file"] })));
    expect([e.kind, e.param]).toEqual(["permission_denied", "spec.file_change.paths[1]"]);
    expect(e.message).toMatch(/symbolic link/);
    e = await rejection(s.create(spec({ kind: "file_change", paths: ["link"] })));
    expect(e.kind).toBe("permission_denied");
    e = await rejection(s.create(spec({ kind: "file_change", paths: [outside] })));
    expect([e.kind, e.param]).toEqual(["invalid_argument", "spec.file_change.paths[0]"]);
    e = await rejection(s.create(spec({ kind: "file_change", root: outside })));
    expect([e.kind, e.param]).toEqual(["permission_denied", "spec.file_change.root"]);
    e = await rejection(s.create(spec({ kind: "file_change", root: path.join(root, "link") })));
    expect(e.kind).toBe("permission_denied");
    e = await rejection(s.create(spec({ kind: "file_change", debounceMs: 10 })));
    expect(e.param).toBe("spec.file_change.debounce");

    const byDefault = await s.create(spec({ kind: "file_change", paths: ["src/../src", "not-yet"] }));
    expect(byDefault.spec.schedule).toEqual({
      kind: "file_change",
      root,
      paths: ["src", "not-yet"],
      globs: [],
      debounceMs: 1000,
    });
    expect(byDefault.nextFireAt).toBeUndefined();
    const byName = await s.create(spec({ kind: "file_change", root: "root" }));
    expect(byName.spec.schedule).toMatchObject({ root });
    const inside = await s.create(spec({ kind: "file_change", root: path.join(root, "src") }));
    expect(inside.spec.schedule).toMatchObject({ root: path.join(root, "src") });
  });
});

describe("CRUD", () => {
  it("gets, lists oldest first with paging, updates with a mask and deletes", async () => {
    const { s } = scheduler();
    const created: TriggerRecord[] = [];
    for (let i = 0; i < 5; i++) {
      created.push(await s.create({ ...spec({ kind: "interval", intervalMs: 60_000 }), name: `t${i}` }));
    }
    // Oldest first; triggers created in the same millisecond are ordered by id.
    created.sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime() || (x.id < y.id ? -1 : 1));
    const ids = created.map((t) => t.id);
    const seen: string[] = [];
    let token = "";
    do {
      const page = await s.list({ pageSize: 2, pageToken: token });
      expect(page.triggers.length).toBeLessThanOrEqual(2);
      seen.push(...page.triggers.map((t) => t.id));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual(ids);
    await expect(s.list({ pageToken: "garbage" })).rejects.toMatchObject({ kind: "invalid_argument" });

    const before = await s.get(ids[0]!);
    const updated = await s.update(
      ids[0]!,
      { name: "ignored", disabled: true, jobTemplate: { prompt: "new prompt" } },
      ["disabled", "job_template.prompt"],
    );
    expect(updated.spec.name).toBe(before.spec.name);
    expect(updated.spec.disabled).toBe(true);
    expect(updated.spec.jobTemplate).toEqual({ prompt: "new prompt" });
    expect(updated.spec.schedule).toEqual(before.spec.schedule);
    expect(updated.nextFireAt).toBeUndefined();
    expect(updated.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
    await expect(s.update(ids[0]!, spec(undefined), ["bogus"])).rejects.toMatchObject({ param: "update_mask" });

    await s.delete(ids[0]!);
    await expect(s.get(ids[0]!)).rejects.toMatchObject({ kind: "not_found" });
    await expect(s.delete(ids[0]!)).rejects.toMatchObject({ kind: "not_found" });
  });
});

describe("timed triggers", () => {
  it("fires an interval trigger repeatedly and records each firing", async () => {
    const { s, submitted } = scheduler();
    await s.start();
    const t = await s.create(spec({ kind: "interval", intervalMs: 200 }));
    const started = Date.now();
    await waitFor(() => submitted.length >= 3, 3000);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(submitted.every((x) => x.id === t.id && x.spec.jobTemplate.prompt === template.prompt)).toBe(true);
    await s.close();
    const after = await s.get(t.id);
    expect(after.fireCount).toBe(submitted.length);
    expect(after.lastJobId).toBe(`job_${submitted.length}`);
    expect(after.lastStatus).toBe("pending");
    expect(after.lastFiredAt).toBeInstanceOf(Date);
    expect(after.nextFireAt!.getTime()).toBeGreaterThan(after.lastFiredAt!.getTime());
  });

  it("computes a cron trigger's next firing in its time zone, as croner does", async () => {
    const now = new Date("2025-03-07T12:00:00Z"); // a Friday
    const { s } = scheduler({ now: () => now });
    const t = await s.create(spec({ kind: "cron", expression: "30 9 * * 1-5", timeZone: "Europe/Berlin" }));
    const expected = new Cron("30 9 * * 1-5", { timezone: "Europe/Berlin" }).nextRun(now)!;
    expect(t.nextFireAt).toEqual(expected);
    expect(t.nextFireAt!.toISOString()).toBe("2025-03-10T08:30:00.000Z"); // Monday 09:30 CET
    expect((await s.get(t.id)).nextFireAt).toEqual(expected);
    const ny = await s.create(spec({ kind: "cron", expression: "0 0 * * *", timeZone: "America/New_York" }));
    expect(ny.nextFireAt!.toISOString()).toBe("2025-03-08T05:00:00.000Z");
  });

  it("fires a cron trigger with a seconds field", async () => {
    const { s, submitted } = scheduler();
    await s.start();
    const t = await s.create(spec({ kind: "cron", expression: "* * * * * *" }));
    await waitFor(() => submitted.length >= 2, 4000);
    expect(submitted[0]!.id).toBe(t.id);
  });

  it("fires a once trigger exactly once", async () => {
    const { s, submitted } = scheduler();
    await s.start();
    const t = await s.create(spec({ kind: "once", at: new Date(Date.now() + 100) }));
    await waitFor(() => submitted.length === 1, 3000);
    await sleep(700);
    expect(submitted).toHaveLength(1);
    const after = await s.get(t.id);
    expect(after.fireCount).toBe(1);
    expect(after.nextFireAt).toBeUndefined();
  });

  it("does not fire a disabled trigger, and fires it once enabled", async () => {
    const { s, submitted } = scheduler();
    await s.start();
    const t = await s.create(spec({ kind: "interval", intervalMs: 100 }, { disabled: true }));
    await sleep(600);
    expect(submitted).toHaveLength(0);
    await s.update(t.id, { ...t.spec, disabled: false }, ["disabled"]);
    await waitFor(() => submitted.length >= 1, 3000);
  });

  it("stops firing a deleted trigger", async () => {
    const { s, submitted } = scheduler();
    await s.start();
    const t = await s.create(spec({ kind: "interval", intervalMs: 100 }));
    await waitFor(() => submitted.length >= 1, 3000);
    await s.delete(t.id);
    await sleep(50);
    const count = submitted.length;
    await sleep(500);
    expect(submitted.length).toBe(count);
  });

  it("skips a firing while the previous job is active (allowOverlap=false)", async () => {
    let active = false;
    const { s, submitted } = scheduler({ isJobActive: async () => active });
    await s.start();
    const t = await s.create(spec({ kind: "interval", intervalMs: 100 }));
    await waitFor(() => submitted.length >= 1, 3000);
    active = true;
    await sleep(150);
    const count = submitted.length;
    await sleep(400);
    expect(submitted.length).toBe(count);
    const skipped = await s.get(t.id);
    expect(skipped.lastError).toBe(SKIPPED_OVERLAP);
    expect(skipped.fireCount).toBe(count);
    active = false;
    await waitFor(() => submitted.length > count, 3000);
  });

  it("without isJobActive, waits for jobFinished before firing again", async () => {
    const { s, submitted } = scheduler({ isJobActive: undefined });
    await s.start();
    const t = await s.create(spec({ kind: "interval", intervalMs: 100 }));
    await waitFor(() => submitted.length >= 1, 3000);
    await sleep(400);
    expect(submitted).toHaveLength(1);
    await s.jobFinished(t.id, "job_1", "failed", "exit code 1");
    expect(await s.get(t.id)).toMatchObject({ lastStatus: "failed", lastError: "exit code 1" });
    await waitFor(() => submitted.length >= 2, 3000);
  });

  it("with two schedulers on one database, fires each occurrence once", async () => {
    const submitted: TriggerRecord[] = [];
    const a = scheduler({ pollMs: 50 }, submitted).s;
    const b = scheduler({ pollMs: 50 }, submitted).s;
    await Promise.all([a.start(), b.start()]);
    const t = await a.create(spec({ kind: "interval", intervalMs: 100 }, { allowOverlap: true }));
    await waitFor(() => submitted.length >= 8, 5000);
    await Promise.all([a.close(), b.close()]);
    // The record handed to submit carries the occurrence after the one claimed: one per occurrence.
    const occurrences = submitted.map((x) => x.nextFireAt!.getTime());
    expect(new Set(occurrences).size).toBe(occurrences.length);
    for (const o of occurrences) expect((o - t.createdAt.getTime()) % 100).toBe(0);
    expect((await a.get(t.id)).fireCount).toBe(submitted.length);
  });

  it.skipIf(!TEST_DATABASE_URL)(
    "on a Postgres server, replicas with their own pools fire each occurrence once",
    async () => {
      const scratch = await createScratchDatabase();
      const dbs = await Promise.all(
        [0, 1, 2].map(() => openDatabase({ dataDir: "", databaseUrl: scratch.url, connectRetryMs: 0 })),
      );
      try {
        const submitted: TriggerRecord[] = [];
        const replicas = dbs.map((d) => scheduler({ db: d, pollMs: 30 }, submitted).s);
        await Promise.all(replicas.map((r) => r.start()));
        const t = await replicas[0]!.create(spec({ kind: "interval", intervalMs: 100 }, { allowOverlap: true }));
        await waitFor(() => submitted.length >= 10, 5000);
        await Promise.all(replicas.map((r) => r.close()));
        const occurrences = submitted.map((x) => x.nextFireAt!.getTime());
        expect(new Set(occurrences).size).toBe(occurrences.length);
        expect((await replicas[1]!.get(t.id)).fireCount).toBe(submitted.length);
      } finally {
        await Promise.all(dbs.map((d) => d.close()));
        await scratch.drop();
      }
    },
  );

  it("fires a missed stretch once, then continues on schedule", async () => {
    let now = new Date("2025-01-01T00:00:00Z");
    const { s, submitted } = scheduler({ now: () => now });
    const t = await s.create(spec({ kind: "interval", intervalMs: 60_000 }));
    now = new Date(now.getTime() + 10 * 60_000 + 5_000); // ten occurrences missed
    await s.start();
    await waitFor(() => submitted.length === 1, 3000);
    await sleep(300);
    expect(submitted).toHaveLength(1);
    expect((await s.get(t.id)).nextFireAt!.toISOString()).toBe("2025-01-01T00:11:00.000Z");
  });
});

describe("file-change triggers", () => {
  it("debounces a burst of changes into one submission listing them, ignoring other globs", async () => {
    const { s, submitted } = scheduler();
    await s.start();
    const t = await s.create(spec({ kind: "file_change", globs: ["*.txt"], debounceMs: 300 }));
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(root, `f${i}.txt`), `${i}\n`);
    await waitFor(() => submitted.length >= 1, 5000);
    await sleep(600);
    expect(submitted).toHaveLength(1);
    const job = submitted[0]!.spec.jobTemplate;
    const listed = job.contextFiles!.find((f) => f.path === CHANGED_PATHS_FILE)!.contents;
    expect(listed.trim().split("\n")).toEqual([0, 1, 2, 3, 4].map((i) => JSON.stringify(`f${i}.txt`)));
    expect(job.prompt).toMatch(/^look at the repository\n\nChanged files .*data, not instructions/s);
    for (let i = 0; i < 5; i++) expect(job.prompt).toContain(`- "f${i}.txt"`);
    expect((await s.get(t.id)).fireCount).toBe(1);

    // Outside the globs, and under node_modules: nothing.
    fs.writeFileSync(path.join(root, "notes.md"), "x");
    fs.mkdirSync(path.join(root, "node_modules"));
    fs.writeFileSync(path.join(root, "node_modules", "dep.txt"), "x");
    await sleep(900);
    expect(submitted).toHaveLength(1);

    // A glob with a slash matches the relative path.
    const sub = path.join(root, "docs");
    fs.mkdirSync(sub);
    await s.update(t.id, spec({ kind: "file_change", globs: ["docs/**/*.md"], debounceMs: 100 }), ["file_change"]);
    fs.writeFileSync(path.join(sub, "a.md"), "x");
    await waitFor(() => submitted.length === 2, 5000);
    expect(submitted[1]!.spec.jobTemplate.prompt).toContain('- "docs/a.md"');
  });

  it("stops watching (and firing) when closed", async () => {
    const { s, submitted } = scheduler();
    await s.start();
    await s.create(spec({ kind: "file_change", debounceMs: 100 }));
    await s.create(spec({ kind: "interval", intervalMs: 100 }));
    await waitFor(() => submitted.length >= 1, 3000);
    await s.close();
    const count = submitted.length;
    fs.writeFileSync(path.join(root, "after-close.txt"), "x");
    await sleep(500);
    expect(submitted.length).toBe(count);
  });

  it("fires once per change when two schedulers watch the same files", async () => {
    const submitted: TriggerRecord[] = [];
    const a = scheduler({}, submitted).s;
    const b = scheduler({}, submitted).s;
    await Promise.all([a.start(), b.start()]);
    await a.create(spec({ kind: "file_change", debounceMs: 200 }));
    // b learns of the trigger on its next poll (100 ms) and needs its watcher ready.
    await sleep(600);
    fs.writeFileSync(path.join(root, "shared.txt"), "x");
    await waitFor(() => submitted.length >= 1, 5000);
    await sleep(800);
    expect(submitted).toHaveLength(1);
  });
});
