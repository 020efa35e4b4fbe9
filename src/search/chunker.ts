import { createHash } from "node:crypto";
import { parseSymbols, type ExtractOptions } from "./symbols/extract.js";
import type { CodeSymbolInfo } from "./symbols/types.js";

/** One piece of a file for the search index; lines are 1-based and inclusive. */
export interface Chunk {
  path: string;
  /** Language id when the file has a grammar, else undefined. */
  language?: string;
  startLine: number;
  endLine: number;
  text: string;
  /** Names of the declarations the chunk overlaps, outermost first. */
  symbols: string[];
  /** sha256 of text, hex: lets the indexer skip unchanged chunks. */
  hash: string;
}

export interface ChunkOptions {
  /** A chunk grows (merging small declarations) up to this many characters... */
  maxChars?: number;
  /** ...and this many lines. */
  maxLines?: number;
  /** Lines shared by consecutive windows when a declaration (or a file without grammar) is cut by lines. */
  overlapLines?: number;
}

export const DEFAULT_CHUNK_OPTIONS: Required<ChunkOptions> = { maxChars: 1500, maxLines: 60, overlapLines: 5 };

/** Chunks a file, by code structure when its language has a grammar and it parses in budget, else by lines. */
export async function chunkFile(
  path: string,
  source: string,
  options?: ChunkOptions & ExtractOptions,
): Promise<Chunk[]> {
  const extraction = await parseSymbols(path, source, options);
  return chunkSource(path, source, [...extraction.symbols, ...extraction.blocks], extraction.language, options);
}

interface Piece {
  start: number;
  end: number;
  /** Line windows overlap their neighbours and must not be merged. */
  window: boolean;
  /** Pieces merge only within one group: the parts of a split declaration stay apart from its neighbours. */
  group: number;
}

/**
 * Pure chunking from already extracted symbols (the indexer extracts once and reuses them here; pass
 * the extraction's `blocks` too so Rust impl blocks stay together).
 * Declarations become pieces (with the comments and blank lines before them), pieces too big are split
 * at their members' boundaries, recursively, and finally into overlapping line windows; then small
 * adjacent pieces are merged up to the limits.
 */
export function chunkSource(
  path: string,
  source: string,
  symbols: readonly CodeSymbolInfo[],
  language?: string,
  options?: ChunkOptions,
): Chunk[] {
  const opts = { ...DEFAULT_CHUNK_OPTIONS, ...options };
  const lines = source.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop(); // the final newline ends a line
  const n = lines.length;
  if (n === 0) return [];
  // cum[i] = characters (newlines included) in lines 1..i, so a range's size is O(1).
  const cum = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) cum[i + 1] = cum[i]! + lines[i]!.length + 1;
  const size = (s: number, e: number): number => cum[e]! - cum[s - 1]! - 1;
  const blank = (line: number): boolean => lines[line - 1]!.trim() === "";
  const fits = (s: number, e: number): boolean => e - s + 1 <= opts.maxLines && size(s, e) <= opts.maxChars;

  const valid = symbols
    .filter((s) => s.startLine >= 1 && s.startLine <= s.endLine && s.startLine <= n)
    .map((s) => ({ ...s, endLine: Math.min(s.endLine, n) }));

  let groups = 0;
  const windows = (s: number, e: number, group: number): Piece[] => {
    const out: Piece[] = [];
    for (let i = s; ;) {
      while (i < e && blank(i)) i++; // a window starting on blank lines would shrink to a duplicate
      let j = i;
      while (j < e && j - i + 1 < opts.maxLines && size(i, j + 1) <= opts.maxChars) j++;
      out.push({ start: i, end: j, window: true, group });
      if (j >= e) return out;
      // Overlap at most half a window, so short windows (long lines) still advance.
      i = Math.max(i + 1, j - Math.min(opts.overlapLines, Math.floor((j - i + 1) / 2)) + 1);
    }
  };

  const split = (s: number, e: number, inner: typeof valid, group: number): Piece[] => {
    const blocks = outermostBlocks(inner);
    if (blocks.length === 0) return fits(s, e) ? [{ start: s, end: e, window: false, group }] : windows(s, e, group);
    const out: Piece[] = [];
    let from = s;
    blocks.forEach((block, i) => {
      // A declaration takes the lines before it (doc comments, blank lines); the last one takes the tail.
      const to = i === blocks.length - 1 ? e : Math.max(block.end, from);
      if (fits(from, to)) out.push({ start: from, end: to, window: false, group });
      else {
        const children = inner.filter(
          (x) =>
            x.startLine >= block.start &&
            x.endLine <= block.end &&
            !(x.startLine === block.start && x.endLine === block.end),
        );
        const inside = ++groups;
        out.push(...(children.length ? split(from, to, children, inside) : windows(from, to, inside)));
      }
      from = to + 1;
    });
    return out;
  };

  const merged: Piece[] = [];
  for (const piece of split(1, n, valid, 0)) {
    const last = merged[merged.length - 1];
    const mergeable = last && !last.window && !piece.window && last.group === piece.group;
    if (last && mergeable && fits(last.start, piece.end)) last.end = piece.end;
    else merged.push({ ...piece });
  }

  const chunks: Chunk[] = [];
  for (const piece of merged) {
    let { start, end } = piece;
    while (start <= end && blank(start)) start++;
    while (end >= start && blank(end)) end--;
    if (start > end) continue;
    const names = namesIn(valid, start, end);
    const text = lines.slice(start - 1, end).join("\n");
    // One line longer than the limit (minified code) is cut by characters; every part keeps its line number.
    const parts = text.length > opts.maxChars && start === end ? sliceChars(text, opts.maxChars) : [text];
    for (const part of parts) {
      chunks.push({ path, language, startLine: start, endLine: end, text: part, symbols: names, hash: sha256(part) });
    }
  }
  return chunks;
}

/** Ranges of the symbols not nested in another, overlapping ones united (e.g. Go `const a, b = ...`). */
function outermostBlocks(symbols: readonly CodeSymbolInfo[]): { start: number; end: number }[] {
  const sorted = [...symbols].sort((a, b) => a.startLine - b.startLine || b.endLine - a.endLine);
  const blocks: { start: number; end: number }[] = [];
  for (const s of sorted) {
    const last = blocks[blocks.length - 1];
    if (last && s.startLine <= last.end) last.end = Math.max(last.end, s.endLine);
    else blocks.push({ start: s.startLine, end: s.endLine });
  }
  return blocks;
}

function namesIn(symbols: readonly CodeSymbolInfo[], start: number, end: number): string[] {
  const hits = symbols
    .filter((s) => s.startLine <= end && s.endLine >= start)
    .sort((a, b) => a.startLine - b.startLine || b.endLine - a.endLine);
  return [...new Set(hits.map((s) => s.name))];
}

function sliceChars(text: string, max: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += max) out.push(text.slice(i, i + max));
  return out;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
