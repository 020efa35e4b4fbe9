import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DatabaseLockedError, FOREIGN_LOCK_STALE_MS, acquireDirLock, judge } from "../../src/storage/file-lock.js";
import { tempDir } from "./helpers.js";

const owner = (o: Record<string, unknown>) => JSON.stringify({ hostname: os.hostname(), token: "t", since: "s", ...o });

describe("PGlite directory lock", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it("judges locks: live pid, dead pid, reused pid, other hosts by age", () => {
    const now = Date.now();
    expect(judge(owner({ pid: process.ppid }), now).live).toBe(true);
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
    expect(judge(owner({ pid: dead }), now)).toMatchObject({ live: false, reason: "process not running" });
    expect(judge(owner({ pid: process.ppid, procStart: "1" }), now)).toMatchObject({
      live: false,
      reason: "pid reused by another process",
    });
    expect(judge(owner({ pid: process.pid, token: "not-held" }), now).live).toBe(false); // previous run, same pid
    const foreign = owner({ pid: 1, hostname: "elsewhere" });
    expect(judge(foreign, now - 1_000, now).live).toBe(true);
    expect(judge(foreign, now - FOREIGN_LOCK_STALE_MS - 1, now).live).toBe(false);
    expect(judge("", now, now).live).toBe(true); // being written
    expect(judge("garbage", now - 60_000, now).live).toBe(false);
  });

  it("acquires, refuses a second acquisition in the same process, and releases", () => {
    const file = path.join(tmp.dir, "a.lock");
    const lock = acquireDirLock(file, "/data/db");
    expect(() => acquireDirLock(file, "/data/db")).toThrow(DatabaseLockedError);
    expect(() => acquireDirLock(file, "/data/db")).toThrow(/\/data\/db is in use .*already open in this process/);
    lock.release();
    lock.release();
    expect(fs.existsSync(file)).toBe(false);
    acquireDirLock(file, "/data/db").release();
  });

  it("does not delete a lock that another process took after ours was replaced", () => {
    const file = path.join(tmp.dir, "b.lock");
    const lock = acquireDirLock(file, "/d");
    fs.writeFileSync(file, owner({ pid: process.ppid, token: "someone-else" }));
    lock.release();
    expect(fs.existsSync(file)).toBe(true);
  });
});
