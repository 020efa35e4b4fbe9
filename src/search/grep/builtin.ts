/**
 * The pure-JS grep used when ripgrep is not installed: the same walk, ignore rules and glob
 * overrides as rg (files/walk.ts), re2js for linear-time matching, and rg's treatment of
 * binary files (a NUL byte anywhere: skipped).
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { GatewayError } from "../../errors/gateway-error.js";
import { IgnoreScope } from "../files/gitignore.js";
import { walkFiles } from "../files/walk.js";
import type { MatchCollector } from "./collect.js";
import type { CompiledPattern } from "./pattern.js";
import type { GrepPlan } from "./plan.js";
import type { FileHits } from "./types.js";

export async function grepBuiltin(
  plan: GrepPlan,
  pattern: CompiledPattern,
  collector: MatchCollector,
): Promise<{ filesSearched: number }> {
  const deadline = Date.now() + plan.timeoutMs;
  let filesSearched = 0;
  const check = () => {
    if (plan.signal?.aborted) throw new GatewayError("canceled", "grep was canceled");
    if (Date.now() > deadline) {
      throw new GatewayError("deadline_exceeded", `grep took longer than ${plan.timeoutMs} ms`);
    }
  };
  for await (const rel of files(plan)) {
    check();
    const hits = await searchFile(plan, pattern, rel, collector.wanted, check);
    if (hits === undefined) continue;
    filesSearched++;
    if (hits.matches.length && !collector.add(hits)) break;
  }
  return { filesSearched };
}

/** Explicit files are searched as given (rg does not filter them); directories are walked. */
async function* files(plan: GrepPlan): AsyncGenerator<string> {
  const targets = plan.targets.length ? plan.targets : [{ rel: "", isDir: true }];
  for (const t of targets) {
    if (!t.isDir) {
      yield t.rel;
      continue;
    }
    const scope = plan.filter.respectGitignore
      ? await IgnoreScope.forDirectory(plan.rootDir, t.rel)
      : IgnoreScope.EMPTY;
    yield* walkFiles(plan.rootDir, t.rel, scope, plan.filter, plan.signal);
  }
}

async function searchFile(
  plan: GrepPlan,
  pattern: CompiledPattern,
  rel: string,
  wanted: number,
  check: () => void,
): Promise<FileHits | undefined> {
  const abs = path.join(plan.rootDir, rel);
  let buf: Buffer;
  try {
    if ((await stat(abs)).size > plan.maxFileBytes) return undefined;
    buf = await readFile(abs);
  } catch {
    return undefined;
  }
  const hits: FileHits = { path: rel, matches: [], lines: new Map() };
  if (buf.includes(0)) return hits;
  if (pattern.prefilter && !pattern.prefilter.test(buf)) return hits;
  const lineStarts: number[] = [];
  for (let i = 0; i < buf.length;) {
    lineStarts.push(i);
    const nl = buf.indexOf(0x0a, i);
    i = nl < 0 ? buf.length : nl + 1;
  }
  const lineAt = (n: number) => {
    const s = lineStarts[n - 1];
    const e = n < lineStarts.length ? lineStarts[n] - 1 : buf[buf.length - 1] === 0x0a ? buf.length - 1 : buf.length;
    return buf.subarray(s, e);
  };
  const C = plan.contextLines;
  for (let n = 1; n <= lineStarts.length; n++) {
    if (n % 4096 === 0) check();
    if (hits.matches.length >= wanted) break;
    const line = lineAt(n);
    const subs = findAll(pattern, line);
    if (!subs.length) continue;
    hits.matches.push({ line: n, raw: line, subs });
  }
  if (C > 0) {
    for (const m of hits.matches) {
      for (let k = Math.max(1, m.line - C); k <= Math.min(lineStarts.length, m.line + C); k++) {
        if (!hits.lines.has(k)) hits.lines.set(k, lineAt(k));
      }
    }
  }
  return hits;
}

/** Every match in a line, as ripgrep iterates them (restart at the end; skip past empty ones). */
function findAll(pattern: CompiledPattern, line: Uint8Array): [number, number][] {
  if (!pattern.re.test(line)) return [];
  const m = pattern.re.matcher(line);
  const out: [number, number][] = [];
  const g = pattern.wholeWord ? 1 : 0;
  let at = 0;
  while (at <= line.length && m.find(at)) {
    const s = m.start(g);
    const e = m.end(g);
    out.push([s, e]);
    if (e > at) at = e;
    else at = nextCharStart(line, Math.max(at, e) + 1);
    if (e === s && e >= line.length) break;
  }
  return out;
}

function nextCharStart(b: Uint8Array, i: number): number {
  while (i < b.length && (b[i] & 0xc0) === 0x80) i++;
  return i;
}
