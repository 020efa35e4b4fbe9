/**
 * ReadFile: a file, a range of its lines or a focus line with context, capped in bytes, with
 * binary files detected and reported instead of dumped.
 */
import { readFile } from "node:fs/promises";
import { GatewayError } from "../../errors/gateway-error.js";
import type { SearchRoots } from "../roots.js";
import { languageOf, looksBinary, sha256Hex, splitLinesKeepEnds } from "./text.js";

export const DEFAULT_READ_BYTES = 256 * 1024;
export const MAX_READ_BYTES = 4 * 1024 * 1024;
export const DEFAULT_FOCUS_CONTEXT = 25;
export const MAX_FOCUS_CONTEXT = 1000;
/** Files are read whole (for total_lines and sha256); bigger ones are refused. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

export interface ReadFileInput {
  root?: string;
  path: string;
  /** Lines start..end (1-based, inclusive; 0 means 1 and the last line). */
  range?: { startLine?: number; endLine?: number };
  /** A line and contextLines around it (0 means 25). */
  focus?: { line: number; contextLines?: number };
  /** Content cap in bytes; 0 means 256 KiB, clamped to 4 MiB. */
  maxBytes?: number;
}

export interface ReadFileResult {
  root: string;
  path: string;
  content: string;
  startLine: number;
  endLine: number;
  focusLine: number;
  totalLines: number;
  sizeBytes: number;
  binary: boolean;
  truncated: boolean;
  language: string;
  modifiedAt: Date;
  sha256: string;
}

export interface ReadFileLimits {
  maxFileBytes?: number;
}

export async function readFileLines(
  roots: SearchRoots,
  input: ReadFileInput,
  limits: ReadFileLimits = {},
): Promise<ReadFileResult> {
  const resolved = await roots.resolve(input.path, { root: input.root });
  const st = resolved.stats;
  if (!st) throw new GatewayError("not_found", `no such file: ${resolved.rel}`, { param: "path" });
  if (!st.isFile())
    throw new GatewayError("invalid_argument", `${resolved.rel || "."} is not a file`, { param: "path" });
  const maxFileBytes = limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (st.size > maxFileBytes) {
    throw new GatewayError("failed_precondition", `${resolved.rel} is larger than ${maxFileBytes} bytes`, {
      param: "path",
      code: "file_too_large",
    });
  }
  const buf = await readFile(resolved.abs);
  const base = {
    root: resolved.root.name,
    path: resolved.rel,
    sizeBytes: buf.length,
    language: languageOf(resolved.rel),
    modifiedAt: st.mtime,
    sha256: sha256Hex(buf),
  };
  if (looksBinary(buf)) {
    return {
      ...base,
      content: "",
      startLine: 0,
      endLine: 0,
      focusLine: 0,
      totalLines: 0,
      binary: true,
      truncated: false,
    };
  }
  const lines = splitLinesKeepEnds(buf.toString("utf8"));
  const total = lines.length;
  const { start, end, focus } = selectLines(input, total);
  const maxBytes = Math.min(input.maxBytes || DEFAULT_READ_BYTES, MAX_READ_BYTES);
  let content = "";
  let used = 0;
  let last = start - 1;
  let truncated = false;
  for (let n = start; n <= end; n++) {
    const line = lines[n - 1];
    const size = Buffer.byteLength(line);
    if (used + size > maxBytes) {
      truncated = true;
      // A first line longer than the cap is cut (at a character), so the answer is never empty.
      if (n === start) {
        content = cutUtf8(line, maxBytes);
        last = n;
      }
      break;
    }
    content += line;
    used += size;
    last = n;
  }
  return {
    ...base,
    content,
    startLine: total ? start : 0,
    endLine: total ? last : 0,
    focusLine: focus,
    totalLines: total,
    binary: false,
    truncated,
  };
}

function selectLines(input: ReadFileInput, total: number): { start: number; end: number; focus: number } {
  if (input.focus) {
    const line = int(input.focus.line, "focus.line");
    if (line < 1) throw new GatewayError("invalid_argument", "focus.line must be at least 1", { param: "focus.line" });
    if (line > Math.max(total, 1)) {
      throw new GatewayError("invalid_argument", `focus.line ${line} is past the end of the file (${total} lines)`, {
        param: "focus.line",
      });
    }
    const ctx = Math.min(
      int(input.focus.contextLines ?? 0, "focus.context_lines") || DEFAULT_FOCUS_CONTEXT,
      MAX_FOCUS_CONTEXT,
    );
    return { start: Math.max(1, line - ctx), end: Math.min(total, line + ctx), focus: line };
  }
  const start = int(input.range?.startLine ?? 0, "range.start_line") || 1;
  const end = int(input.range?.endLine ?? 0, "range.end_line") || total;
  if (total === 0) return { start: 1, end: 0, focus: 0 };
  if (start > total) {
    throw new GatewayError(
      "invalid_argument",
      `range.start_line ${start} is past the end of the file (${total} lines)`,
      {
        param: "range.start_line",
      },
    );
  }
  if (end < start) {
    throw new GatewayError("invalid_argument", "range.end_line is before range.start_line", {
      param: "range.end_line",
    });
  }
  return { start, end: Math.min(end, total), focus: 0 };
}

function int(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0) {
    throw new GatewayError("invalid_argument", `${field} must be a non-negative integer`, { param: field });
  }
  return v;
}

/** The longest prefix of s whose UTF-8 encoding fits in maxBytes, cut at a code point. */
export function cutUtf8(s: string, maxBytes: number): string {
  const buf = Buffer.from(s);
  if (buf.length <= maxBytes) return s;
  let end = maxBytes;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString("utf8");
}
