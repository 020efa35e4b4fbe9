/**
 * LocateStackTrace: parses Node, Python, Go and Rust stack traces into frames, finds each
 * frame's file under a root (absolute prefixes that name a root are stripped; other paths are
 * matched by their longest suffix that exists under the root) and returns the lines around it.
 * Every file is read through ReadFile, so the root rules apply unchanged.
 */
import { GatewayError } from "../errors/gateway-error.js";
import { IgnoreScope } from "./files/gitignore.js";
import { readFileLines } from "./files/read-file.js";
import { walkFiles } from "./files/walk.js";
import { isInside, type SearchRoot, type SearchRoots } from "./roots.js";

export type StackTraceFormat = "node" | "python" | "go" | "rust";

export interface ParsedFrame {
  raw: string;
  format: StackTraceFormat;
  function: string;
  tracePath: string;
  line: number;
  column: number;
}

export interface LocatedFrame extends ParsedFrame {
  resolved: boolean;
  root: string;
  path: string;
  startLine: number;
  endLine: number;
  snippet: string;
}

export interface LocateInput {
  text: string;
  /** 0 means 3; at most 50. */
  contextLines?: number;
  /** Empty tries every root. */
  root?: string;
  /** 0 means 50; at most 500. */
  maxFrames?: number;
  includeUnresolved?: boolean;
}

export const MAX_TRACE_BYTES = 256 * 1024;
/** Longer lines are not frames; the cap also bounds the line regexes' work. */
const MAX_FRAME_LINE = 2000;
/** Files indexed for suffix matching, per root and request. */
const MAX_SUFFIX_INDEX_FILES = 50_000;

const NODE = /^\s*at\s+(?:(.+?)\s+\()?((?:file:\/\/)?[^\s()][^()]*?):(\d+)(?::(\d+))?\)?\s*$/;
const PYTHON = /^\s*File "([^"]+)", line (\d+)(?:, in (.+))?\s*$/;
const GO_FILE = /^\s+(\S+\.go):(\d+)(?:\s+\+0x[0-9a-fA-F]+)?\s*$/;
const RUST_AT = /^\s*at\s+(\S+\.rs):(\d+)(?::(\d+))?\s*$/;
const RUST_PANIC = /panicked at (?:'.*', )?(\S+\.rs):(\d+):(\d+)/;
const RUST_FN = /^\s*\d+:\s+(?:0x[0-9a-fA-F]+ - )?(.+?)\s*$/;

/** The frames of a trace, in trace order. */
export function parseStackTrace(text: string): ParsedFrame[] {
  const lines = text.split(/\r?\n/);
  const frames: ParsedFrame[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (raw.length > MAX_FRAME_LINE) continue;
    let m: RegExpMatchArray | null;
    if ((m = raw.match(RUST_AT))) {
      const fn = i > 0 ? lines[i - 1].match(RUST_FN) : null;
      frames.push(frame(raw, "rust", fn?.[1] ?? "", m[1], m[2], m[3]));
    } else if ((m = raw.match(RUST_PANIC))) {
      frames.push(frame(raw, "rust", "", m[1], m[2], m[3]));
    } else if ((m = raw.match(PYTHON))) {
      frames.push(frame(raw, "python", m[3] ?? "", m[1], m[2]));
    } else if ((m = raw.match(GO_FILE))) {
      const prev = i > 0 ? lines[i - 1].trim() : "";
      frames.push(frame(raw, "go", prev.replace(/\(.*\)$/, ""), m[1], m[2]));
    } else if ((m = raw.match(NODE))) {
      frames.push(frame(raw, "node", (m[1] ?? "").replace(/^async\s+/, ""), m[2], m[3], m[4]));
    }
  }
  return frames;
}

function frame(
  raw: string,
  format: StackTraceFormat,
  fn: string,
  file: string,
  line: string,
  col?: string,
): ParsedFrame {
  return { raw, format, function: fn.trim(), tracePath: file, line: Number(line), column: col ? Number(col) : 0 };
}

export async function locateStackTrace(roots: SearchRoots, input: LocateInput): Promise<LocatedFrame[]> {
  if (Buffer.byteLength(input.text ?? "") > MAX_TRACE_BYTES) {
    throw new GatewayError("invalid_argument", "text is larger than 256 KiB", { param: "text" });
  }
  const context = bounded(input.contextLines ?? 0, "context_lines", 50) || 3;
  const maxFrames = bounded(input.maxFrames ?? 0, "max_frames", 500) || 50;
  const candidates = input.root ? [roots.get(input.root)] : [...roots.list()];
  const finder = new SuffixFinder();
  const out: LocatedFrame[] = [];
  for (const f of parseStackTrace(input.text ?? "")) {
    if (out.length >= maxFrames) break;
    const located = await locateFrame(roots, candidates, finder, f, context);
    if (located.resolved || input.includeUnresolved) out.push(located);
  }
  return out;
}

async function locateFrame(
  roots: SearchRoots,
  candidates: SearchRoot[],
  finder: SuffixFinder,
  f: ParsedFrame,
  context: number,
): Promise<LocatedFrame> {
  const unresolved: LocatedFrame = { ...f, resolved: false, root: "", path: "", startLine: 0, endLine: 0, snippet: "" };
  const file = normaliseTracePath(f.tracePath);
  if (!file || f.line < 1) return unresolved;
  for (const root of candidates) {
    const rel = await findInRoot(roots, root, finder, file);
    if (rel === undefined) continue;
    try {
      const r = await readFileLines(roots, {
        root: root.name,
        path: rel,
        focus: { line: f.line, contextLines: context },
      });
      if (r.binary) continue;
      return {
        ...f,
        resolved: true,
        root: root.name,
        path: r.path,
        startLine: r.startLine,
        endLine: r.endLine,
        snippet: r.content,
      };
    } catch (err) {
      // The file is there but the line is not (an older build): still say where it is.
      if (err instanceof GatewayError && err.kind === "invalid_argument") {
        return { ...unresolved, resolved: true, root: root.name, path: rel };
      }
    }
  }
  return unresolved;
}

/** The trace's path as a plain path, or "" for frames that name no file (node:internal, <string>). */
function normaliseTracePath(p: string): string {
  let s = p.trim();
  if (s.startsWith("file://")) {
    try {
      s = decodeURIComponent(new URL(s).pathname);
    } catch {
      return "";
    }
  }
  if (/^(node:|internal\/|<)/.test(s) || s.includes("\0")) return "";
  return s.replace(/^webpack:\/\/\/?/, "").replace(/^\.\//, "");
}

/** The file's path relative to root, or undefined when it is not found there. */
async function findInRoot(
  roots: SearchRoots,
  root: SearchRoot,
  finder: SuffixFinder,
  file: string,
): Promise<string | undefined> {
  const isFile = async (rel: string) => {
    try {
      const r = await roots.resolve(rel, { root: root.name });
      return r.stats?.isFile() ? r.rel : undefined;
    } catch {
      return undefined;
    }
  };
  if (file.startsWith("/")) {
    for (const base of [root.dir, root.configured]) {
      if (isInside(base, file)) return isFile(file.slice(base.length).replace(/^\/+/, ""));
    }
  } else {
    const direct = await isFile(file);
    if (direct) return direct;
  }
  // A path from another machine or working directory: the longest suffix found under the root.
  const parts = file.split("/").filter((s) => s && s !== "." && s !== "..");
  return finder.find(root, parts);
}

/** Indexes a root's files by base name once per request, for suffix matching. */
class SuffixFinder {
  private readonly byRoot = new Map<string, Promise<Map<string, string[]>>>();

  async find(root: SearchRoot, parts: string[]): Promise<string | undefined> {
    if (!parts.length) return undefined;
    let index = this.byRoot.get(root.name);
    if (!index) {
      index = buildIndex(root);
      this.byRoot.set(root.name, index);
    }
    const candidates = (await index).get(parts[parts.length - 1]) ?? [];
    let best: { rel: string; score: number } | undefined;
    for (const rel of candidates) {
      const segs = rel.split("/");
      let k = 0;
      while (k < segs.length && k < parts.length && segs[segs.length - 1 - k] === parts[parts.length - 1 - k]) k++;
      // More matching trailing segments wins; then the shorter path.
      if (!best || k > best.score || (k === best.score && rel.length < best.rel.length)) best = { rel, score: k };
    }
    return best?.rel;
  }
}

async function buildIndex(root: SearchRoot): Promise<Map<string, string[]>> {
  const index = new Map<string, string[]>();
  let n = 0;
  const scope = await IgnoreScope.forDirectory(root.dir, "");
  for await (const rel of walkFiles(root.dir, "", scope, { includeHidden: false, respectGitignore: true })) {
    if (++n > MAX_SUFFIX_INDEX_FILES) break;
    const base = rel.slice(rel.lastIndexOf("/") + 1);
    const list = index.get(base);
    if (list) list.push(rel);
    else index.set(base, [rel]);
  }
  return index;
}

function bounded(v: number, field: string, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new GatewayError("invalid_argument", `${field} must be an integer from 0 to ${max}`, { param: field });
  }
  return v;
}
