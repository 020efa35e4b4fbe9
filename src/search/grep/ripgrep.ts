/**
 * Grep through ripgrep: `rg --json`, spawned with an argv array (no shell), the pattern after
 * `-e` (so `--pre=cmd` is text, seed-systems.md §5 item 1), never `--pcre2`, no config file.
 * Ignore sources are pinned to what the builtin engine reads (.gitignore files inside the root
 * only), paths are sorted so the cap picks the same matches, and rg is killed as soon as the
 * cap is reached.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { GatewayError } from "../../errors/gateway-error.js";
import { IgnoreScope, rerootRule } from "../files/gitignore.js";
import type { MatchCollector } from "./collect.js";
import type { CompiledPattern } from "./pattern.js";
import type { GrepPlan } from "./plan.js";
import type { FileHits } from "./types.js";

const MAX_STDERR = 8192;

export function ripgrepArgs(plan: GrepPlan, pattern: CompiledPattern, pat: string, ignoreFile?: string): string[] {
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
    // Deterministic order, so an exact cap picks the same matches as the builtin engine.
    "--sort",
    "path",
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
  try {
    return await run(rgPath, ripgrepArgs(plan, pattern, pat, tmp?.file), plan, collector);
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

interface RgText {
  text?: string;
  bytes?: string;
}

function rawOf(t: RgText | undefined): Uint8Array {
  if (!t) return new Uint8Array();
  const b = t.bytes !== undefined ? Buffer.from(t.bytes, "base64") : Buffer.from(t.text ?? "", "utf8");
  return b.length && b[b.length - 1] === 0x0a ? b.subarray(0, b.length - 1) : b;
}

function pathOf(t: RgText): string {
  const p = t.bytes !== undefined ? Buffer.from(t.bytes, "base64").toString("utf8") : (t.text ?? "");
  return p.startsWith("./") ? p.slice(2) : p;
}

function run(
  rgPath: string,
  args: string[],
  plan: GrepPlan,
  collector: MatchCollector,
): Promise<{ filesSearched: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(rgPath, args, { cwd: plan.rootDir, stdio: ["ignore", "pipe", "pipe"], env: {} });
    let stderr = "";
    let stopped = false;
    let failure: GatewayError | undefined;
    let filesSearched = 0;
    let filesEnded = 0;
    let file: FileHits | undefined;
    let fileMatches = 0;
    let lastKept = 0;
    const C = plan.contextLines;

    const stop = (err?: GatewayError) => {
      if (stopped) return;
      stopped = true;
      failure = err;
      rl.close();
      child.kill("SIGKILL");
    };
    const timer = setTimeout(
      () => stop(new GatewayError("deadline_exceeded", `grep took longer than ${plan.timeoutMs} ms`)),
      plan.timeoutMs,
    );
    const onAbort = () => stop(new GatewayError("canceled", "grep was canceled"));
    plan.signal?.addEventListener("abort", onAbort, { once: true });

    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += d.toString("utf8");
    });
    const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
    rl.on("line", (line) => {
      if (stopped) return;
      let ev: { type: string; data: any };
      try {
        ev = JSON.parse(line);
      } catch {
        return;
      }
      const d = ev.data;
      switch (ev.type) {
        case "begin":
          file = { path: pathOf(d.path), matches: [], lines: new Map() };
          fileMatches = 0;
          lastKept = 0;
          break;
        case "match":
        case "context": {
          if (!file) break;
          const n: number = d.line_number;
          const raw = rawOf(d.lines);
          if (ev.type === "match") {
            fileMatches++;
            // Keep only what the cap can use, but read on to `end` to learn if the file is binary.
            if (fileMatches <= collector.wanted) {
              const subs = (d.submatches as { start: number; end: number }[]).map(
                (s) => [s.start, s.end] as [number, number],
              );
              file.matches.push({ line: n, raw, subs });
              lastKept = n;
              if (C) file.lines.set(n, raw);
            } else if (C && n <= lastKept + C) file.lines.set(n, raw);
          } else if (C && (fileMatches < collector.wanted || n <= lastKept + C)) {
            file.lines.set(n, raw);
          }
          break;
        }
        case "end":
          filesEnded++;
          if (file && d.binary_offset == null && file.matches.length && !collector.add(file)) stop();
          file = undefined;
          break;
        case "summary":
          filesSearched = d.stats?.searches ?? filesEnded;
          break;
      }
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new GatewayError("unavailable", `could not run ripgrep: ${err.message}`, { cause: err }));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      plan.signal?.removeEventListener("abort", onAbort);
      if (failure) return reject(failure);
      if (stopped) return resolve({ filesSearched: Math.max(filesSearched, filesEnded) });
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
      resolve({ filesSearched: filesSearched || filesEnded });
    });
  });
}

function firstLines(s: string): string {
  return s.trim().split("\n").slice(0, 6).join(" ").slice(0, 500);
}
