/**
 * Turns each engine's raw per-file hits into GrepMatch objects the same way, and enforces the
 * total match cap exactly: a file's hits are offered whole, in walk order, and the collector
 * says when to stop.
 */
import { cutUtf8 } from "../files/read-file.js";
import type { FileHits, GrepContextLine, GrepMatch, GrepSubmatch } from "./types.js";

/** Longest line text returned (bytes); a minified file must not blow up the answer. */
export const MAX_LINE_BYTES = 4096;

export class MatchCollector {
  readonly matches: GrepMatch[] = [];
  truncated = false;

  constructor(
    private readonly rootName: string,
    private readonly cap: number,
    private readonly context: number,
  ) {}

  /** Matches still wanted, plus one to learn whether more exist. */
  get wanted(): number {
    return this.cap - this.matches.length + 1;
  }

  get full(): boolean {
    return this.truncated;
  }

  /** Adds a file's hits; returns false once the cap is reached and more matches exist. */
  add(hits: FileHits): boolean {
    for (const m of hits.matches) {
      if (this.matches.length >= this.cap) {
        this.truncated = true;
        return false;
      }
      const { text, map } = decodeLine(m.raw);
      const subs: GrepSubmatch[] = [];
      let bytes: Buffer | undefined;
      for (const [s, e] of m.subs) {
        bytes ??= Buffer.from(text);
        const start = map(s);
        if (start >= bytes.length) continue;
        const end = Math.min(map(e), bytes.length);
        subs.push({ start, end, text: bytes.toString("utf8", start, end) });
      }
      this.matches.push({
        root: this.rootName,
        path: hits.path,
        line: m.line,
        column: subs.length ? subs[0].start + 1 : 1,
        lineText: text,
        submatches: subs,
        contextBefore: this.around(hits, m.line - this.context, m.line - 1),
        contextAfter: this.around(hits, m.line + 1, m.line + this.context),
      });
    }
    return true;
  }

  private around(hits: FileHits, from: number, to: number): GrepContextLine[] {
    const out: GrepContextLine[] = [];
    for (let n = Math.max(1, from); n <= to; n++) {
      const raw = hits.lines.get(n);
      if (raw) out.push({ line: n, text: decodeLine(raw).text });
    }
    return out;
  }
}

/** cutUtf8 for text that is valid UTF-8 already in hand as bytes. */
function cutValid(buf: Buffer): string {
  let end = MAX_LINE_BYTES;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.toString("utf8", 0, end);
}

/**
 * A raw line as text (invalid UTF-8 replaced, "\r" ending dropped, capped at MAX_LINE_BYTES),
 * with a map from raw byte offsets to byte offsets in that text.
 */
export function decodeLine(raw: Uint8Array): { text: string; map: (off: number) => number } {
  let bytes = raw;
  if (bytes.length && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const full = buf.toString("utf8");
  const valid = Buffer.byteLength(full) === buf.length && !full.includes("\uFFFD");
  // Valid UTF-8 is its own encoding: short lines need no cut, long ones are cut on the raw bytes.
  const text = !valid ? cutUtf8(full, MAX_LINE_BYTES) : buf.length <= MAX_LINE_BYTES ? full : cutValid(buf);
  const map = valid
    ? (off: number) => Math.min(off, buf.length)
    : (off: number) => Buffer.byteLength(buf.subarray(0, Math.min(off, buf.length)).toString("utf8"));
  return { text, map };
}
