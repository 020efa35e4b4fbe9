/**
 * Unified diffs (`diff -u`, `git diff`): parsing and applying in memory. A hunk applies only
 * where all its context and removed lines match exactly; it may have moved (other edits above
 * it), so the nearest exact match to its stated line is taken, as `patch` does without fuzz.
 */

export interface HunkLine {
  op: " " | "-" | "+";
  text: string;
}

export interface Hunk {
  header: string;
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  lines: HunkLine[];
  /** "\ No newline at end of file" after the old / new side's last line. */
  oldNoNewline: boolean;
  newNoNewline: boolean;
}

export interface FilePatch {
  /** Path before, undefined for a new file ("/dev/null"). */
  oldPath?: string;
  /** Path after, undefined for a deleted file. */
  newPath?: string;
  hunks: Hunk[];
}

export class PatchError extends Error {}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

export function parseUnifiedDiff(text: string): FilePatch[] {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const patches: FilePatch[] = [];
  let gitOld: string | undefined;
  let gitNew: string | undefined;
  let renameFrom: string | undefined;
  let renameTo: string | undefined;
  let i = 0;
  const flushGitOnly = () => {
    // A git rename with no content change has no ---/+++ lines.
    if (renameFrom !== undefined && renameTo !== undefined) {
      patches.push({ oldPath: renameFrom, newPath: renameTo, hunks: [] });
    }
    renameFrom = renameTo = undefined;
  };
  while (i < lines.length) {
    const line = stripCr(lines[i]);
    if (line.startsWith("diff --git ")) {
      flushGitOnly();
      const m = line.match(/^diff --git (\S+) (\S+)$/);
      gitOld = m ? stripPrefix(m[1]) : undefined;
      gitNew = m ? stripPrefix(m[2]) : undefined;
      i++;
    } else if (line.startsWith("rename from ")) {
      renameFrom = line.slice(12);
      i++;
    } else if (line.startsWith("rename to ")) {
      renameTo = line.slice(10);
      i++;
    } else if (line.startsWith("--- ") && i + 1 < lines.length && stripCr(lines[i + 1]).startsWith("+++ ")) {
      const oldPath = headerPath(line.slice(4));
      const newPath = headerPath(stripCr(lines[i + 1]).slice(4));
      renameFrom = renameTo = undefined;
      i += 2;
      const hunks: Hunk[] = [];
      while (i < lines.length && HUNK.test(stripCr(lines[i]))) {
        const [hunk, next] = parseHunk(lines, i);
        hunks.push(hunk);
        i = next;
      }
      if (!hunks.length) throw new PatchError(`no hunks for ${newPath ?? oldPath}`);
      patches.push({ oldPath, newPath, hunks });
      gitOld = gitNew = undefined;
    } else if (line.startsWith("Binary files ") || line.startsWith("GIT binary patch")) {
      throw new PatchError(`binary patches are not supported (${gitNew ?? gitOld ?? "unknown file"})`);
    } else {
      i++;
    }
  }
  flushGitOnly();
  if (!patches.length) throw new PatchError("no file changes found in the patch");
  return patches;
}

function parseHunk(lines: string[], start: number): [Hunk, number] {
  const header = stripCr(lines[start]);
  const m = header.match(HUNK)!;
  const hunk: Hunk = {
    header: header.slice(0, header.indexOf(" @@") + 3),
    oldStart: Number(m[1]),
    oldLines: m[2] === undefined ? 1 : Number(m[2]),
    newStart: Number(m[3]),
    newLines: m[4] === undefined ? 1 : Number(m[4]),
    lines: [],
    oldNoNewline: false,
    newNoNewline: false,
  };
  let oldSeen = 0;
  let newSeen = 0;
  let i = start + 1;
  while (i < lines.length && (oldSeen < hunk.oldLines || newSeen < hunk.newLines)) {
    const raw = lines[i];
    const op = raw[0];
    // Some tools drop the space of an empty context line.
    if (raw === "" || raw === "\r") {
      hunk.lines.push({ op: " ", text: "" });
      oldSeen++;
      newSeen++;
    } else if (op === " " || op === "-" || op === "+") {
      hunk.lines.push({ op, text: raw.slice(1) });
      if (op !== "+") oldSeen++;
      if (op !== "-") newSeen++;
    } else if (op === "\\") {
      markNoNewline(hunk);
    } else {
      break;
    }
    i++;
  }
  if (oldSeen !== hunk.oldLines || newSeen !== hunk.newLines) {
    throw new PatchError(`hunk ${hunk.header} is malformed: its line counts do not match its body`);
  }
  while (i < lines.length && lines[i].startsWith("\\")) {
    markNoNewline(hunk);
    i++;
  }
  return [hunk, i];
}

function markNoNewline(hunk: Hunk): void {
  const last = hunk.lines[hunk.lines.length - 1];
  if (!last) return;
  if (last.op === "-") hunk.oldNoNewline = true;
  else if (last.op === "+") hunk.newNoNewline = true;
  else hunk.oldNoNewline = hunk.newNoNewline = true;
}

function stripCr(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}

/** "a/src/x.ts\t2024-01-01 ..." → "src/x.ts"; "/dev/null" → undefined. */
function headerPath(s: string): string | undefined {
  let p = s.split("\t")[0].trim();
  if (p.startsWith('"') && p.endsWith('"')) p = p.slice(1, -1);
  if (p === "/dev/null") return undefined;
  return stripPrefix(p);
}

function stripPrefix(p: string): string {
  return /^[ab]\//.test(p) ? p.slice(2) : p;
}

/** A text file as lines (without endings) plus whether it ended with a newline. */
export interface TextLines {
  lines: string[];
  finalNewline: boolean;
  eol: "\n" | "\r\n";
}

export function toLines(text: string): TextLines {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  if (text === "") return { lines: [], finalNewline: false, eol };
  const finalNewline = text.endsWith("\n");
  const body = finalNewline ? text.slice(0, -1) : text;
  return { lines: body.split("\n").map((l) => (eol === "\r\n" ? stripCr(l) : l)), finalNewline, eol };
}

export function fromLines(t: TextLines): string {
  if (!t.lines.length) return "";
  return t.lines.join(t.eol) + (t.finalNewline ? t.eol : "");
}

/**
 * Applies hunks in order; throws PatchError naming the first hunk (1-based) that does not
 * apply. Returns new content.
 */
export function applyHunks(original: TextLines, hunks: Hunk[], fileLabel: string): TextLines {
  const out: string[] = [];
  let pos = 0; // next unconsumed line of the original
  let delta = 0; // how far applied hunks moved later ones
  // A file created by the patch ends with a newline unless the patch says otherwise.
  let finalNewline = original.lines.length ? original.finalNewline : true;
  hunks.forEach((h, idx) => {
    const old = h.lines.filter((l) => l.op !== "+").map((l) => l.text);
    // Line numbers refer to the original; a pure insertion (",0") goes after line oldStart.
    const stated = h.oldLines === 0 ? h.oldStart : h.oldStart - 1;
    const expected = Math.max(0, stated + delta);
    const at = findBlock(original.lines, old, expected, pos);
    if (at < 0) {
      throw new PatchError(
        `hunk #${idx + 1} (${h.header}) of ${fileLabel} does not apply: its context does not match the file`,
      );
    }
    out.push(...original.lines.slice(pos, at));
    for (const l of h.lines) if (l.op !== "-") out.push(l.text);
    pos = at + old.length;
    delta = at - stated;
    if (pos === original.lines.length) {
      if (h.newNoNewline) finalNewline = false;
      else if (h.oldNoNewline) finalNewline = true;
    }
  });
  out.push(...original.lines.slice(pos));
  return { lines: out, finalNewline: out.length ? finalNewline : false, eol: original.eol };
}

/** The index nearest `expected` (not before `from`) where block occurs in lines, or -1. */
function findBlock(lines: string[], block: string[], expected: number, from: number): number {
  const fits = (at: number) => {
    if (at < from || at + block.length > lines.length) return false;
    for (let k = 0; k < block.length; k++) if (lines[at + k] !== block[k]) return false;
    return true;
  };
  const limit = Math.max(lines.length, expected) + 1;
  for (let d = 0; d <= limit; d++) {
    if (fits(expected - d)) return expected - d;
    if (d && fits(expected + d)) return expected + d;
  }
  return -1;
}
