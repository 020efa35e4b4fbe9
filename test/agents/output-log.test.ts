// OutputLog: absolute offsets shared by the in-memory ring and the on-disk log, the size cap
// (rotation moves log_start_offset by whole segments), and reads after a "restart" (a new
// OutputLog over the same directory) coming from the files.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OutputLog } from "../../src/agents/output-log.js";
import { tempDir } from "./helpers.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = tempDir("agentgate-log-");
  dirs.push(d);
  return d;
}

/** Appends `total` random bytes in chunks of random size; returns everything written. */
function fill(log: OutputLog, total: number, maxChunk: number): Buffer {
  const all = randomBytes(total);
  for (let at = 0; at < total;) {
    const n = Math.min(total - at, 1 + Math.floor(Math.random() * maxChunk));
    expect(log.append(all.subarray(at, at + n))).toBe(at);
    at += n;
  }
  return all;
}

describe("OutputLog", () => {
  it("every read, from the ring or the file, returns exactly the bytes at those offsets", () => {
    const log = OutputLog.create(dir(), { ringBytes: 4096, fileMaxBytes: 1 << 30 });
    const all = fill(log, 200_000, 3000);
    expect(log.end).toBe(200_000);
    expect(log.start).toBe(0);
    for (let i = 0; i < 500; i++) {
      const since = Math.floor(Math.random() * 200_000);
      const max = 1 + Math.floor(Math.random() * 10_000);
      const r = log.read(since, max);
      expect(r.offset).toBe(since);
      expect(r.data.equals(all.subarray(since, since + max))).toBe(true);
    }
    // Ranges across the ring's edge (file part + ring part) are served whole from the file.
    const edge = log.read(200_000 - 5000, 5000);
    expect(edge.data.equals(all.subarray(195_000))).toBe(true);
    expect(log.tail(100).data.equals(all.subarray(199_900))).toBe(true);
    expect(log.read(200_000, 10).data.length).toBe(0);
    log.close();
  });

  it("a chunk larger than the ring keeps only its end in memory, and reads stay exact", () => {
    const log = OutputLog.create(dir(), { ringBytes: 1000, fileMaxBytes: 1 << 30 });
    const big = randomBytes(5000);
    log.append(big);
    expect(log.read(4500, 500).data.equals(big.subarray(4500))).toBe(true);
    expect(log.read(0, 5000).data.equals(big)).toBe(true);
    log.close();
  });

  it("the size cap keeps the newest half or more, moves start by whole segments, and names segments by offset", () => {
    const d = dir();
    const log = OutputLog.create(d, { ringBytes: 1024, fileMaxBytes: 100_000 });
    const all = fill(log, 430_000, 7000);
    // Retained: between half the cap and the cap (plus one chunk).
    const retained = log.end - log.start;
    expect(retained).toBeGreaterThanOrEqual(50_000);
    expect(retained).toBeLessThanOrEqual(100_000 + 7000);
    expect(log.start).toBeGreaterThan(0);
    // Reads before start are clamped to start, with the offset saying so.
    const r = log.read(0, 1000);
    expect(r.offset).toBe(log.start);
    expect(r.data.equals(all.subarray(log.start, log.start + 1000))).toBe(true);
    const files = fs.readdirSync(d).sort();
    expect(files).toEqual(["output.log", `output.log.${log.start}`]);
    const onDisk = files.reduce((n, f) => n + fs.statSync(path.join(d, f)).size, 0);
    expect(onDisk).toBe(retained);
    log.close();
  });

  it("after a restart the same offsets are read from the files, and appending continues at the end", () => {
    const d = dir();
    const first = OutputLog.create(d, { ringBytes: 2048, fileMaxBytes: 60_000 });
    const all = fill(first, 100_000, 4000);
    const { start, end } = first;
    first.close();

    const reader = OutputLog.openReadOnly(d);
    expect([reader.start, reader.end]).toEqual([start, end]);
    expect(reader.read(start, end).data.equals(all.subarray(start))).toBe(true);
    expect(reader.tail(3000).data.equals(all.subarray(end - 3000))).toBe(true);

    const again = OutputLog.create(d, { ringBytes: 2048, fileMaxBytes: 60_000 });
    const more = randomBytes(500);
    expect(again.append(more)).toBe(end);
    // The ring holds only what was written since the restart; older bytes come from disk.
    expect(again.read(end - 100, 600).data.equals(Buffer.concat([all.subarray(end - 100), more]))).toBe(true);
    again.close();
  });

  it("repairs a rotation that stopped half-way (two old segments, no current file)", () => {
    const d = dir();
    fs.writeFileSync(path.join(d, "output.log.0"), "a".repeat(10));
    fs.writeFileSync(path.join(d, "output.log.10"), "b".repeat(5));
    const log = OutputLog.openReadOnly(d);
    expect([log.start, log.end]).toEqual([10, 15]);
    expect(log.read(0, 100).data.toString()).toBe("bbbbb");
    expect(fs.readdirSync(d)).toEqual(["output.log.10"]);
  });
});
