/**
 * Reading `rg --json` lines without JSON.parse for the hot events (match, context, begin, end):
 * a byte-level reader that decodes only a line's first MAX_RAW_LINE_BYTES, however long the line
 * (a minified file's line can be megabytes). Anything of an unexpected shape falls back to
 * JSON.parse (parseLineEventJson, also the reference in tests). Measured by bench/search: the grep
 * ratio to plain rg went from 1.6-2.4 to 1.0-1.6 with parallel rg and this reader.
 */
import { MAX_LINE_BYTES } from "./collect.js";

/**
 * Raw bytes kept per line: the collector shows at most MAX_LINE_BYTES of text, and a prefix this
 * much longer decodes to the same first MAX_LINE_BYTES (+1) bytes, so clipping changes nothing.
 */
export const MAX_RAW_LINE_BYTES = MAX_LINE_BYTES + 16;

interface RgText {
  text?: string;
  bytes?: string;
}

/** One match or context line: its number, raw bytes (see rawOf) and submatch byte offsets. */
export interface LineEvent {
  n: number;
  raw: Uint8Array;
  subs: [number, number][];
}

/** A line's raw bytes without its "\n", clipped to MAX_RAW_LINE_BYTES (copied, not a view). */
function rawOf(t: RgText | undefined): Uint8Array {
  if (!t) return new Uint8Array();
  let b: Buffer;
  if (t.bytes !== undefined) b = Buffer.from(t.bytes, "base64");
  else {
    const s = t.text ?? "";
    // A UTF-16 unit is at least one UTF-8 byte: this many units hold every byte we keep.
    b = Buffer.from(s.length > MAX_RAW_LINE_BYTES + 1 ? s.slice(0, MAX_RAW_LINE_BYTES + 1) : s, "utf8");
  }
  return clipRaw(b);
}

function clipRaw(b: Buffer): Buffer {
  if (b.length > MAX_RAW_LINE_BYTES) return Buffer.from(b.subarray(0, MAX_RAW_LINE_BYTES));
  return b.length && b[b.length - 1] === 0x0a ? b.subarray(0, b.length - 1) : b;
}

/** The path as bytes ("./" dropped): rg names non-UTF-8 paths in base64. */
export function pathBytesOf(t: RgText | undefined): Buffer {
  if (!t) return Buffer.alloc(0);
  return dropDotSlash(t.bytes !== undefined ? Buffer.from(t.bytes, "base64") : Buffer.from(t.text ?? "", "utf8"));
}

function dropDotSlash(b: Buffer): Buffer {
  return b.length >= 2 && b[0] === 0x2e && b[1] === 0x2f ? b.subarray(2) : b;
}

// --- rg --json lines, read as bytes ---

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const lit = (s: string) => Buffer.from(s, "latin1");
/** `{"type":"` : rg writes `type` first in every message but the summary. */
export const TYPE_PREFIX = lit('{"type":"');
const DATA_PATH = lit(',"data":{"path":{"');
const TEXT_KEY = lit('text":"');
const BYTES_KEY = lit('bytes":"');
const LINES_KEY = lit('},"lines":{"');
const LINE_NUMBER = lit('},"line_number":');
const ABSOLUTE_OFFSET = lit(',"absolute_offset":');
const SUBMATCHES = lit(',"submatches":[');
const MATCH_KEY = lit('{"match":{"');
const START_KEY = lit('},"start":');
const END_KEY = lit(',"end":');
const BINARY_OFFSET = lit('},"binary_offset":');
const MATCHED_LINES = lit('"matched_lines":');
const NULL = lit("null");

export function at(buf: Buffer, i: number, l: Buffer): boolean {
  if (i < 0 || i + l.length > buf.length) return false;
  for (let k = 0; k < l.length; k++) if (buf[i + k] !== l[k]) return false;
  return true;
}

/** Index of the quote closing the JSON string whose contents start at i (before e), or -1. */
function stringEnd(buf: Buffer, i: number, e: number): number {
  for (;;) {
    const q = buf.indexOf(QUOTE, i);
    if (q < 0 || q >= e) return -1;
    let k = q - 1;
    while (k >= i && buf[k] === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q;
    i = q + 1;
  }
}

/** Reads digits at i: [value, index after], or undefined. */
function uint(buf: Buffer, i: number, e: number): [number, number] | undefined {
  let v = 0;
  const s = i;
  while (i < e && buf[i]! >= 0x30 && buf[i]! <= 0x39) v = v * 10 + buf[i++]! - 0x30;
  return i > s ? [v, i] : undefined;
}

const SIMPLE_ESCAPES: Record<number, number> = {
  0x22: 0x22,
  0x5c: 0x5c,
  0x2f: 0x2f,
  0x62: 0x08,
  0x66: 0x0c,
  0x6e: 0x0a,
  0x72: 0x0d,
  0x74: 0x09,
};

/**
 * The bytes of the JSON string text in buf[a, q) (already UTF-8 there: rg escapes only quotes,
 * backslashes and control characters), clipped like rawOf; undefined for an escape it does not
 * know (the caller then falls back to JSON.parse).
 */
function unescapeText(buf: Buffer, a: number, q: number): Buffer | undefined {
  const limit = MAX_RAW_LINE_BYTES + 1;
  const firstEscape = buf.indexOf(BACKSLASH, a);
  const finalNewline = firstEscape === q - 2 && buf[q - 1] === 0x6e;
  if (finalNewline || firstEscape < 0 || firstEscape >= q) {
    // No escape but perhaps the final "\n": copy (a view would keep rg's whole chunk alive).
    const end = finalNewline ? q - 2 : q;
    const b = Buffer.from(buf.subarray(a, Math.min(end, a + limit)));
    return end - a > MAX_RAW_LINE_BYTES ? b.subarray(0, MAX_RAW_LINE_BYTES) : b;
  }
  const out = Buffer.allocUnsafe(Math.min(q - a, limit));
  let o = 0;
  let i = a;
  while (i < q && o < limit) {
    const b = buf.indexOf(BACKSLASH, i);
    const runEnd = b < 0 || b >= q ? q : b;
    o += buf.copy(out, o, i, Math.min(runEnd, i + (limit - o)));
    if (runEnd === q || o >= limit) break;
    const c = buf[b + 1]!;
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) {
      out[o++] = simple;
      i = b + 2;
    } else if (c === 0x75 /* u */ && b + 6 <= q) {
      const cp = parseInt(buf.toString("latin1", b + 2, b + 6), 16);
      if (!(cp >= 0 && cp < 0x80)) return undefined; // rg escapes only control characters
      out[o++] = cp;
      i = b + 6;
    } else return undefined;
  }
  if (o > MAX_RAW_LINE_BYTES) return out.subarray(0, MAX_RAW_LINE_BYTES);
  return o && out[o - 1] === 0x0a ? out.subarray(0, o - 1) : out.subarray(0, o);
}

/** The JSON string starting at i (after `{"`): [raw bytes, index of its closing quote], or undefined. */
function readLineString(buf: Buffer, i: number, e: number): [Buffer, number] | undefined {
  if (at(buf, i, TEXT_KEY)) {
    const a = i + TEXT_KEY.length;
    const q = stringEnd(buf, a, e);
    if (q < 0) return undefined;
    const raw = unescapeText(buf, a, q);
    return raw && [raw, q];
  }
  if (at(buf, i, BYTES_KEY)) {
    const a = i + BYTES_KEY.length;
    const q = stringEnd(buf, a, e);
    if (q < 0) return undefined;
    // Base64 has no escapes; 4 characters per 3 bytes, so decode only the prefix we keep.
    const chars = Math.min(q - a, Math.ceil((MAX_RAW_LINE_BYTES + 1) / 3) * 4);
    return [clipRaw(Buffer.from(buf.toString("latin1", a, a + chars), "base64")), q];
  }
  return undefined;
}

/** Skips a {"text":..} or {"bytes":..} object's string starting at i (after `{"`); index of its closing quote. */
function skipTextObject(buf: Buffer, i: number, e: number): number {
  const key = at(buf, i, TEXT_KEY) ? TEXT_KEY : at(buf, i, BYTES_KEY) ? BYTES_KEY : undefined;
  return key ? stringEnd(buf, i + key.length, e) : -1;
}

/**
 * The path of a begin or end message (buf[s, e)) as bytes, "./" dropped, and the index of the
 * quote closing it; undefined when not in the expected shape (or escaped: left to JSON.parse).
 */
export function readPath(buf: Buffer, s: number, e: number): [Buffer, number] | undefined {
  let i = buf.indexOf(QUOTE, s + TYPE_PREFIX.length);
  if (i < 0 || i >= e || !at(buf, i + 1, DATA_PATH)) return undefined;
  i += 1 + DATA_PATH.length;
  const key = at(buf, i, TEXT_KEY) ? TEXT_KEY : at(buf, i, BYTES_KEY) ? BYTES_KEY : undefined;
  if (!key) return undefined;
  const a = i + key.length;
  const q = stringEnd(buf, a, e);
  if (q < 0) return undefined;
  if (key === BYTES_KEY) return [dropDotSlash(Buffer.from(buf.toString("latin1", a, q), "base64")), q];
  const b = buf.indexOf(BACKSLASH, a);
  if (b >= 0 && b < q) return undefined;
  return [dropDotSlash(Buffer.from(buf.subarray(a, q))), q];
}

/** An end message: its path, whether rg found the file binary, and its matching lines. */
export function readEnd(buf: Buffer, s: number, e: number): { path: Buffer; binary: boolean; matchedLines: number } {
  const p = readPath(buf, s, e);
  if (p && at(buf, p[1] + 1, BINARY_OFFSET)) {
    const i = p[1] + 1 + BINARY_OFFSET.length;
    const binary = !at(buf, i, NULL);
    const m = buf.indexOf(MATCHED_LINES, i);
    const n = m >= 0 && m < e ? uint(buf, m + MATCHED_LINES.length, e) : undefined;
    if (n && (binary ? uint(buf, i, e) : true)) return { path: p[0], binary, matchedLines: n[0] };
  }
  const d = parseData(buf.toString("utf8", s, e));
  const matchedLines = d?.stats?.matched_lines;
  return {
    path: pathBytesOf(d?.path),
    binary: d?.binary_offset != null,
    matchedLines: typeof matchedLines === "number" ? matchedLines : 0,
  };
}

/**
 * A match or context message (buf[s, e), type at s + 9, rg's field order) without JSON.parse:
 * only the line's first MAX_RAW_LINE_BYTES are decoded, however long it is. Undefined when the
 * line is not in the shape expected; the caller then parses it as JSON.
 */
export function parseLineEvent(buf: Buffer, s: number, e: number): LineEvent | undefined {
  let i = buf.indexOf(QUOTE, s + TYPE_PREFIX.length);
  if (i < 0 || i >= e || !at(buf, i + 1, DATA_PATH)) return undefined;
  i = skipTextObject(buf, i + 1 + DATA_PATH.length, e);
  if (i < 0 || !at(buf, i + 1, LINES_KEY)) return undefined;
  const line = readLineString(buf, i + 1 + LINES_KEY.length, e);
  if (!line) return undefined;
  i = line[1] + 1;
  if (!at(buf, i, LINE_NUMBER)) return undefined;
  const n = uint(buf, i + LINE_NUMBER.length, e);
  if (!n || !at(buf, n[1], ABSOLUTE_OFFSET)) return undefined;
  const off = uint(buf, n[1] + ABSOLUTE_OFFSET.length, e);
  if (!off || !at(buf, off[1], SUBMATCHES)) return undefined;
  i = off[1] + SUBMATCHES.length;
  const subs: [number, number][] = [];
  if (buf[i] !== 0x5d /* ] */) {
    for (;;) {
      if (!at(buf, i, MATCH_KEY)) return undefined;
      i = skipTextObject(buf, i + MATCH_KEY.length, e);
      if (i < 0 || !at(buf, i + 1, START_KEY)) return undefined;
      const start = uint(buf, i + 1 + START_KEY.length, e);
      if (!start || !at(buf, start[1], END_KEY)) return undefined;
      const end = uint(buf, start[1] + END_KEY.length, e);
      if (!end || buf[end[1]] !== 0x7d /* } */) return undefined;
      subs.push([start[0], end[0]]);
      i = end[1] + 1;
      if (buf[i] === 0x2c /* , */) i++;
      else if (buf[i] === 0x5d) break;
      else return undefined;
    }
  }
  return { n: n[0], raw: line[0], subs };
}

/** The same from JSON.parse (the fallback, and the reference in tests). */
export function parseLineEventJson(json: string): LineEvent | undefined {
  let d: any;
  try {
    d = JSON.parse(json).data;
  } catch {
    return undefined;
  }
  if (!d || typeof d.line_number !== "number") return undefined;
  return {
    n: d.line_number,
    raw: rawOf(d.lines),
    subs: ((d.submatches ?? []) as { start: number; end: number }[]).map((m) => [m.start, m.end]),
  };
}

/** The `data` object of an rg JSON line, undefined when the line is not JSON. */
export function parseData(line: string): any {
  try {
    return JSON.parse(line).data;
  } catch {
    return undefined;
  }
}
