/**
 * Grep through ripgrep: `rg --json`, spawned with an argv array (no shell), the pattern after
 * `-e` (so `--pre=cmd` is text, seed-systems.md §5 item 1), never `--pcre2`, no config file.
 * Ignore sources are pinned to what the builtin engine reads (.gitignore files inside the root
 * only). The cap must pick the same matches as the builtin engine (the first N in walk order), so:
 * rg first runs in parallel (its default, unsorted) while each file's hits are buffered; if the
 * run ends, the files are sorted into walk order and handed over. If the cap is exceeded by far
 * (PARALLEL_BUDGET; which N are first depends on the order), that run is killed and rg runs again
 * with `--sort path` (single-threaded), killed as soon as the cap is reached. Buffered lines are
 * clipped to what the answer can show, so memory stays bounded by the cap.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { GatewayError } from "../../errors/gateway-error.js";
import { IgnoreScope, rerootRule } from "../files/gitignore.js";
import type { MatchCollector } from "./collect.js";
import type { CompiledPattern } from "./pattern.js";
import {
  at,
  MAX_RAW_LINE_BYTES,
  parseLineEvent,
  parseData,
  parseLineEventJson,
  pathBytesOf,
  readEnd,
  readPath,
  TYPE_PREFIX,
  type LineEvent,
} from "./rg-json.js";
import type { GrepPlan } from "./plan.js";
import type { FileHits } from "./types.js";

const MAX_STDERR = 8192;

export function ripgrepArgs(
  plan: GrepPlan,
  pattern: CompiledPattern,
  pat: string,
  ignoreFile?: string,
  opts: { sorted?: boolean } = {},
): string[] {
  const args = [
    "--json",
    "--no-config",
    // Only .gitignore files inside the searched tree: not .ignore/.rgignore, not the user's
    // global excludes, not .git/info/exclude, not files above the root, with or without a repo.
    "--no-require-git",
    "--no-ignore-dot",
    "--no-ignore-global",
    "--no-ignore-exclude",
    "--no-ignore-parent",
    // Walk order (single-threaded): only for the run that must stop at exactly the cap.
    ...(opts.sorted ? ["--sort", "path"] : []),
    "--max-filesize",
    String(plan.maxFileBytes),
    "--context",
    String(plan.contextLines),
    ...pattern.rgFlags,
  ];
  if (!plan.filter.respectGitignore) args.push("--no-ignore-vcs");
  if (plan.filter.includeHidden) args.push("--hidden");
  // "--glob=value" so a glob can never be read as a flag; "!.git" last so nothing re-includes it.
  for (const g of plan.globs) args.push(`--glob=${g}`);
  args.push("--glob=!.git");
  if (ignoreFile) args.push(`--ignore-file=${ignoreFile}`);
  args.push("-e", pat, "--");
  if (plan.targets.length) for (const t of plan.targets) args.push(t.rel || ".");
  else args.push(".");
  return args;
}

export async function grepRipgrep(
  rgPath: string,
  plan: GrepPlan,
  pattern: CompiledPattern,
  pat: string,
  collector: MatchCollector,
): Promise<{ filesSearched: number }> {
  const tmp = await ancestorIgnoreFile(plan);
  const deadline = Date.now() + plan.timeoutMs;
  try {
    const file = tmp?.file;
    if (!overlapping(plan)) {
      const r = await runParallel(rgPath, ripgrepArgs(plan, pattern, pat, file), plan, collector, deadline);
      if (r) return r;
    }
    return await runSorted(rgPath, ripgrepArgs(plan, pattern, pat, file, { sorted: true }), plan, collector, deadline);
  } finally {
    if (tmp) await rm(tmp.dir, { recursive: true, force: true });
  }
}

/**
 * With --no-ignore-parent, rg would not apply the .gitignore files between the root and a
 * directory named in `paths`; hand them over re-rooted (shallowest first, so deeper rules win).
 */
async function ancestorIgnoreFile(plan: GrepPlan): Promise<{ dir: string; file: string } | undefined> {
  if (!plan.filter.respectGitignore) return undefined;
  const scopes = new Map<string, string[]>();
  for (const t of plan.targets) {
    if (!t.isDir || t.rel === "") continue;
    const parent = t.rel.includes("/") ? t.rel.slice(0, t.rel.lastIndexOf("/")) : "";
    const scope = await IgnoreScope.forDirectory(plan.rootDir, parent);
    for (const { dirRel, rules } of scope.chain()) {
      if (!scopes.has(dirRel))
        scopes.set(
          dirRel,
          rules.map((r) => rerootRule(r, dirRel)),
        );
    }
  }
  if (!scopes.size) return undefined;
  const depth = (d: string) => (d === "" ? 0 : d.split("/").length);
  const lines = [...scopes.entries()].sort((a, b) => depth(a[0]) - depth(b[0])).flatMap(([, l]) => l);
  const dir = await mkdtemp(path.join(tmpdir(), "agentgate-rg-"));
  const file = path.join(dir, "ignore");
  await writeFile(file, lines.join("\n") + "\n");
  return { dir, file };
}

/** Targets where one is (inside) another: a file may be searched twice; only the sorted run orders that. */
function overlapping(plan: GrepPlan): boolean {
  const rels = plan.targets.map((t) => t.rel);
  return rels.some((a, i) => rels.some((b, j) => i !== j && (a === b || b.startsWith(a + "/"))));
}

/**
 * Builds one file's FileHits from rg's events. Keeps at most `wanted` matches (the cap can use
 * no more) and the context lines around them, but reads on to `end` to learn if the file is binary.
 */
class FileReader {
  file: FileHits | undefined;
  pathBytes: Buffer = Buffer.alloc(0);
  private fileMatches = 0;
  private lastKept = 0;

  constructor(private readonly context: number) {}

  begin(pathBytes: Buffer): void {
    this.pathBytes = pathBytes;
    this.file = { path: this.pathBytes.toString("utf8"), matches: [], lines: new Map() };
    this.fileMatches = 0;
    this.lastKept = 0;
  }

  /** Whether a match (or context) line is worth parsing at all; if not, it is counted here. */
  wants(isMatch: boolean, wanted: number): boolean {
    if (!this.file) return false;
    if (this.context > 0 || (isMatch && this.fileMatches < wanted)) return true;
    if (isMatch) this.fileMatches++;
    return false;
  }

  line(isMatch: boolean, ev: LineEvent, wanted: number): void {
    const file = this.file;
    if (!file) return;
    const C = this.context;
    const { n, raw } = ev;
    if (isMatch) {
      this.fileMatches++;
      if (this.fileMatches <= wanted) {
        file.matches.push({ line: n, raw, subs: ev.subs });
        this.lastKept = n;
        if (C) file.lines.set(n, raw);
      } else if (C && n <= this.lastKept + C) file.lines.set(n, raw);
    } else if (C && (this.fileMatches < wanted || n <= this.lastKept + C)) {
      file.lines.set(n, raw);
    }
  }

  /** Ends the file: its hits, or undefined when it had none or turned out binary. */
  end(binary: boolean): FileHits | undefined {
    const f = this.file;
    this.file = undefined;
    return f && !binary && f.matches.length ? f : undefined;
  }
}

interface RunResult {
  filesSearched: number;
}

/** A line of rg's stdout: buf[start, end), without its "\n". */
type LineSink = (buf: Buffer, start: number, end: number) => boolean;

/**
 * Spawns rg and hands each stdout line to onLine, as bytes (split by hand: no readline, no
 * decoding of what is not needed); onLine returns false to stop, which kills rg.
 */
function spawnRg(
  rgPath: string,
  args: string[],
  plan: GrepPlan,
  deadline: number,
  onLine: LineSink,
): Promise<{ stopped: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(rgPath, args, { cwd: plan.rootDir, stdio: ["ignore", "pipe", "pipe"], env: {} });
    let stderr = "";
    let stopped = false;
    let failure: GatewayError | undefined;
    let pending: Buffer[] = [];

    const stop = (err?: GatewayError) => {
      if (stopped) return;
      stopped = true;
      failure = err;
      pending = [];
      child.kill("SIGKILL");
    };
    const timer = setTimeout(
      () => stop(new GatewayError("deadline_exceeded", `grep took longer than ${plan.timeoutMs} ms`)),
      Math.max(0, deadline - Date.now()),
    );
    const onAbort = () => stop(new GatewayError("canceled", "grep was canceled"));
    if (plan.signal?.aborted) onAbort();
    else plan.signal?.addEventListener("abort", onAbort, { once: true });

    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += d.toString("utf8");
    });
    child.stdout.on("data", (chunk: Buffer) => {
      if (stopped) return;
      let start = 0;
      if (pending.length) {
        const nl = chunk.indexOf(0x0a);
        if (nl < 0) {
          pending.push(chunk);
          return;
        }
        const line = Buffer.concat([...pending, chunk.subarray(0, nl)]);
        pending = [];
        if (!onLine(line, 0, line.length)) return stop();
        start = nl + 1;
      }
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl < 0) break;
        if (nl > start && !onLine(chunk, start, nl)) return stop();
        start = nl + 1;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      plan.signal?.removeEventListener("abort", onAbort);
      reject(new GatewayError("unavailable", `could not run ripgrep: ${err.message}`, { cause: err }));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      plan.signal?.removeEventListener("abort", onAbort);
      if (failure) return reject(failure);
      if (stopped) return resolve({ stopped });
      if (pending.length) {
        const line = Buffer.concat(pending);
        pending = [];
        if (!onLine(line, 0, line.length)) return resolve({ stopped: true });
      }
      // Exit 2 also reports unreadable files alongside results; only a bad pattern is the caller's fault.
      if (code === 2 && /regex parse error|error parsing/i.test(stderr)) {
        return reject(
          new GatewayError("invalid_argument", `invalid regular expression: ${firstLines(stderr)}`, {
            param: "pattern",
            code: "invalid_pattern",
          }),
        );
      }
      if (code !== 0 && code !== 1 && code !== 2) {
        return reject(new GatewayError("internal", `ripgrep failed (exit ${code}): ${firstLines(stderr)}`));
      }
      resolve({ stopped });
    });
  });
}

/**
 * Reads rg --json lines into a FileReader; calls onEnd with each finished file's hits and
 * onSummary with the number of files searched. Match and context lines are parsed by hand
 * (parseLineEvent), and not at all when the reader does not want them.
 */
function lineHandler(
  reader: FileReader,
  wanted: () => number,
  onEnd: (hits: FileHits | undefined, pathBytes: Buffer, matchedLines: number) => boolean,
  onSummary: (searches: number) => void,
): LineSink {
  return (buf, s, e) => {
    if (!at(buf, s, TYPE_PREFIX)) {
      // The summary (rg writes its "type" last).
      try {
        const ev = JSON.parse(buf.toString("utf8", s, e));
        if (ev.type === "summary" && typeof ev.data?.stats?.searches === "number") onSummary(ev.data.stats.searches);
      } catch {
        // not JSON: ignore
      }
      return true;
    }
    const type = buf[s + TYPE_PREFIX.length];
    switch (type) {
      case 0x6d /* m(atch) */:
      case 0x63 /* c(ontext) */: {
        const isMatch = type === 0x6d;
        if (!reader.wants(isMatch, wanted())) return true;
        const ev = parseLineEvent(buf, s, e) ?? parseLineEventJson(buf.toString("utf8", s, e));
        if (ev) reader.line(isMatch, ev, wanted());
        return true;
      }
      case 0x62 /* b(egin) */: {
        reader.begin(readPath(buf, s, e)?.[0] ?? pathBytesOf(parseData(buf.toString("utf8", s, e))?.path));
        return true;
      }
      case 0x65 /* e(nd) */: {
        const end = readEnd(buf, s, e);
        return onEnd(reader.end(end.binary), reader.pathBytes, end.matchedLines);
      }
      default:
        return true;
    }
  };
}

/** Streams `rg --sort path` into the collector, file by file, and kills rg once the cap is reached. */
async function runSorted(
  rgPath: string,
  args: string[],
  plan: GrepPlan,
  collector: MatchCollector,
  deadline: number,
): Promise<RunResult> {
  const reader = new FileReader(plan.contextLines);
  let filesEnded = 0;
  let searches = 0;
  const onLine = lineHandler(
    reader,
    () => collector.wanted,
    (hits) => {
      filesEnded++;
      return !hits || collector.add(hits);
    },
    (n) => (searches = n),
  );
  const { stopped } = await spawnRg(rgPath, args, plan, deadline, onLine);
  return { filesSearched: stopped ? Math.max(searches, filesEnded) : searches || filesEnded };
}

/**
 * Once more than the cap has matched, which matches come first depends on the walk order the
 * parallel run does not have. It still goes on while rg has reported at most this many times
 * cap + 1 matching lines, in case the rest of the tree has few more: then sorting what it found
 * is cheaper than a sorted run to near the end of the tree. Past that the pattern is dense, and
 * `rg --sort path`, which stops at the cap, is cheaper. (node_modules, busy 2-core VM, medians
 * of 7, for 1 / 1.5 / 3: whole-word "deprecated" (2 708 matches) cap 2 000 399 / 202 / 201 ms,
 * cap 200 69 / 69 / 101 ms; "function" cap 10 000 216 / 259 / 302 ms.) It also bounds what is
 * buffered: at most this many times cap + 1 matches, plus one file's cap + 1.
 */
const PARALLEL_BUDGET = 1.5;

interface Buffered {
  target: number;
  key: Buffer;
  hits: FileHits;
}

/**
 * Runs rg in parallel, buffering each file's hits, then hands them to the collector in walk
 * order. Returns undefined (rg killed, nothing collected) when more than the cap matched and
 * the budget ran out: the caller then runs `rg --sort path`.
 */
async function runParallel(
  rgPath: string,
  args: string[],
  plan: GrepPlan,
  collector: MatchCollector,
  deadline: number,
): Promise<RunResult | undefined> {
  const cap = plan.maxMatches;
  const reader = new FileReader(plan.contextLines);
  const files: Buffered[] = [];
  /** Matches kept in `files`. */
  let total = 0;
  /** Matching lines rg reported, kept or not (binary files, past a file's cap + 1). */
  let seen = 0;
  let filesEnded = 0;
  let searches = 0;
  let gaveUp = false;
  const onLine = lineHandler(
    reader,
    () => cap + 1,
    (hits, pathBytes, matchedLines) => {
      filesEnded++;
      seen += matchedLines;
      if (hits) {
        files.push({ target: targetIndex(plan, pathBytes), key: walkKey(pathBytes), hits });
        total += hits.matches.length;
      }
      if (total > cap && seen > PARALLEL_BUDGET * (cap + 1)) {
        gaveUp = true;
        return false;
      }
      return true;
    },
    (n) => (searches = n),
  );
  await spawnRg(rgPath, args, plan, deadline, onLine);
  if (gaveUp) return undefined;
  files.sort((a, b) => a.target - b.target || Buffer.compare(a.key, b.key));
  for (const f of files) if (!collector.add(f.hits)) break;
  return { filesSearched: searches || filesEnded };
}

/**
 * Walk order (component by component, by bytes) as a plain byte order: with "/" mapped below
 * every other byte, a shorter component sorts first just as in Path comparison.
 */
function walkKey(pathBytes: Buffer): Buffer {
  const k = Buffer.from(pathBytes);
  for (let i = k.indexOf(0x2f); i >= 0; i = k.indexOf(0x2f, i + 1)) k[i] = 0;
  return k;
}

/** Which of the (non-overlapping) targets a file came from: rg searches them in the order given. */
function targetIndex(plan: GrepPlan, pathBytes: Buffer): number {
  const ts = plan.targets;
  if (ts.length < 2) return 0;
  const p = pathBytes.toString("utf8");
  for (let i = 0; i < ts.length; i++) {
    const rel = ts[i]!.rel;
    if (p === rel || p.startsWith(rel + "/")) return i;
  }
  return ts.length;
}

function firstLines(s: string): string {
  return s.trim().split("\n").slice(0, 6).join(" ").slice(0, 500);
}
