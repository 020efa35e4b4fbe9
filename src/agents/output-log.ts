/**
 * An agent's output: one byte stream with absolute offsets (0 = the first byte the program wrote),
 * kept in two places with the same offsets:
 * - a ring of the newest `ringBytes` in memory, for live subscribers and recent reads;
 * - an append-only log on disk, `<dir>/output.log`, for everything else, after an exit and after a
 *   restart. Its size is capped: when `output.log` reaches half the cap it is renamed to
 *   `output.log.<start offset>` (replacing the previous one) and a new `output.log` begins. So between
 *   half the cap and the cap is retained, the file names carry the offsets (no index to get out of
 *   step after a crash), and `logStart` (the oldest retained offset) moves forward by whole segments.
 *
 * Writes are synchronous (page cache, one write per PTY chunk) so the ring, the file and `end` never
 * disagree: a read of any offset below `end` finds the bytes in one of the two.
 */
import fs from "node:fs";
import path from "node:path";

export const LOG_FILE = "output.log";

export interface OutputLogOptions {
  /** Bytes kept in memory (AGENT_MAX_LOG_BYTES). */
  ringBytes: number;
  /** Bytes kept on disk at most (AGENT_LOG_FILE_MAX_BYTES); at least half of it is always kept. */
  fileMaxBytes: number;
}

export interface LogRange {
  /** Offset of data's first byte (later than asked when older bytes are gone). */
  offset: number;
  data: Buffer;
}

interface Segment {
  start: number;
  file: string;
}

export class OutputLog {
  private readonly dir: string;
  private readonly ring: Buffer;
  private readonly fileMaxBytes: number;
  /** Offset after the newest byte. */
  private endOffset: number;
  /** Older retained bytes, when a rotation happened. */
  private previous: Segment | undefined;
  private currentStart: number;
  /** The ring holds nothing older than this (bytes written before a restart are on disk only). */
  private readonly ringStart: number;
  private fd: number | undefined;
  private readonly writable: boolean;

  private constructor(dir: string, opts: OutputLogOptions, writable: boolean) {
    this.dir = dir;
    this.ring = Buffer.alloc(writable ? opts.ringBytes : 0);
    this.fileMaxBytes = opts.fileMaxBytes;
    this.writable = writable;
    const { previous, currentStart, currentSize } = scan(dir);
    this.previous = previous;
    this.currentStart = currentStart;
    this.endOffset = currentStart + currentSize;
    this.ringStart = this.endOffset;
  }

  /** A new (or continued) log that accepts appends. */
  static create(dir: string, opts: OutputLogOptions): OutputLog {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const log = new OutputLog(dir, opts, true);
    log.fd = fs.openSync(path.join(dir, LOG_FILE), "a", 0o600);
    return log;
  }

  /** A log written earlier (an exited agent, or one from before a restart), read from disk only. */
  static openReadOnly(dir: string): OutputLog {
    return new OutputLog(dir, { ringBytes: 0, fileMaxBytes: Number.MAX_SAFE_INTEGER }, false);
  }

  get end(): number {
    return this.endOffset;
  }

  /** The oldest offset still readable. */
  get start(): number {
    return this.previous?.start ?? this.currentStart;
  }

  /** Appends a chunk; returns the offset of its first byte. */
  append(chunk: Buffer): number {
    if (!this.writable || this.fd === undefined) throw new Error("output log is read-only or closed");
    const offset = this.endOffset;
    fs.writeSync(this.fd, chunk);
    this.writeRing(chunk);
    this.endOffset += chunk.length;
    if (this.endOffset - this.currentStart >= this.fileMaxBytes / 2) this.rotate();
    return offset;
  }

  /** Up to `maxBytes` from `since` (clamped to what is retained); empty at the end. */
  read(since: number, maxBytes: number): LogRange {
    const from = Math.max(since, this.start);
    const to = Math.min(this.endOffset, from + maxBytes);
    if (to <= from) return { offset: Math.min(from, this.endOffset), data: Buffer.alloc(0) };
    const ringFrom = Math.max(this.ringStart, this.endOffset - this.ring.length);
    const data = from >= ringFrom ? this.readRing(from, to) : this.readFile(from, to);
    return { offset: from, data };
  }

  /** The last `n` bytes (fewer when less is retained). */
  tail(n: number, maxBytes = n): LogRange {
    return this.read(Math.max(this.start, this.endOffset - n), maxBytes);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private writeRing(chunk: Buffer): void {
    const cap = this.ring.length;
    if (cap === 0) return;
    // Only the last `cap` bytes of a large chunk can survive.
    const src = chunk.length > cap ? chunk.subarray(chunk.length - cap) : chunk;
    const pos = (this.endOffset + chunk.length - src.length) % cap;
    const first = Math.min(src.length, cap - pos);
    src.copy(this.ring, pos, 0, first);
    if (first < src.length) src.copy(this.ring, 0, first);
  }

  private readRing(from: number, to: number): Buffer {
    const cap = this.ring.length;
    const out = Buffer.allocUnsafe(to - from);
    const pos = from % cap;
    const first = Math.min(out.length, cap - pos);
    this.ring.copy(out, 0, pos, pos + first);
    if (first < out.length) this.ring.copy(out, first, 0, out.length - first);
    return out;
  }

  private readFile(from: number, to: number): Buffer {
    const out = Buffer.allocUnsafe(to - from);
    let filled = 0;
    const segments: Segment[] = [
      ...(this.previous ? [this.previous] : []),
      { start: this.currentStart, file: LOG_FILE },
    ];
    for (let i = 0; i < segments.length && filled < out.length; i++) {
      const seg = segments[i]!;
      const segEnd = segments[i + 1]?.start ?? this.endOffset;
      const pos = from + filled;
      if (pos >= segEnd) continue;
      const fd = fs.openSync(path.join(this.dir, seg.file), "r");
      try {
        const want = Math.min(out.length - filled, segEnd - pos);
        let got = 0;
        while (got < want) {
          const n = fs.readSync(fd, out, filled + got, want - got, pos - seg.start + got);
          if (n <= 0) break;
          got += n;
        }
        filled += got;
        if (got < want) break;
      } finally {
        fs.closeSync(fd);
      }
    }
    return out.subarray(0, filled);
  }

  /**
   * Crash-safe order: rename the current file first (it now carries its start offset in its name),
   * then drop the older segment, then open a fresh current file. `scan` repairs an interrupted run.
   */
  private rotate(): void {
    fs.closeSync(this.fd!);
    const name = `${LOG_FILE}.${this.currentStart}`;
    fs.renameSync(path.join(this.dir, LOG_FILE), path.join(this.dir, name));
    if (this.previous) fs.rmSync(path.join(this.dir, this.previous.file), { force: true });
    this.previous = { start: this.currentStart, file: name };
    this.currentStart = this.endOffset;
    this.fd = fs.openSync(path.join(this.dir, LOG_FILE), "a", 0o600);
  }
}

/** Reads a log directory's layout; repairs the states an interrupted rotation can leave. */
function scan(dir: string): { previous?: Segment; currentStart: number; currentSize: number } {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return { currentStart: 0, currentSize: 0 };
  }
  const olds = names
    .map((n) => /^output\.log\.(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ start: Number(m[1]), file: m[0] }))
    .sort((a, b) => a.start - b.start);
  // More than one older segment: a rotation stopped before removing the oldest.
  for (const stale of olds.slice(0, -1)) fs.rmSync(path.join(dir, stale.file), { force: true });
  const previous = olds.at(-1);
  const previousEnd = previous ? previous.start + fs.statSync(path.join(dir, previous.file)).size : 0;
  let currentSize = 0;
  try {
    currentSize = fs.statSync(path.join(dir, LOG_FILE)).size;
  } catch {
    // renamed but not yet recreated: the current segment is empty
  }
  return { previous, currentStart: previousEnd, currentSize };
}
