/**
 * Grep: validates the request, resolves its paths inside the root, and runs ripgrep when it
 * is installed or the builtin engine otherwise. Both give the same matches for the same tree.
 */
import { GatewayError } from "../../errors/gateway-error.js";
import { SystemTools } from "../../system/system-tools.js";
import { GlobError, OverrideGlobs } from "../files/glob.js";
import type { SearchRoots } from "../roots.js";
import { grepBuiltin } from "./builtin.js";
import { MatchCollector } from "./collect.js";
import { compilePattern } from "./pattern.js";
import type { GrepPlan, GrepTarget } from "./plan.js";
import { grepRipgrep } from "./ripgrep.js";
import type { GrepInput, GrepResult } from "./types.js";

export const DEFAULT_MAX_MATCHES = 200;
export const MAX_MATCHES = 10_000;
export const MAX_CONTEXT_LINES = 20;
export const MAX_PATHS = 100;
export const MAX_GLOBS = 100;

export interface GrepOptions {
  /** Where to find rg; a fresh SystemTools (PATH) when unset. */
  tools?: Pick<SystemTools, "path">;
  /** Force an engine ("builtin" for tests and when rg misbehaves). */
  engine?: "auto" | "ripgrep" | "builtin";
  timeoutMs?: number;
  maxFileBytes?: number;
  signal?: AbortSignal;
}

export async function grep(roots: SearchRoots, input: GrepInput, opts: GrepOptions = {}): Promise<GrepResult> {
  const pattern = compilePattern(input.pattern, input);
  const contextLines = boundedInt(input.contextLines ?? 0, "context_lines", 0, MAX_CONTEXT_LINES);
  const maxMatches = boundedInt(input.maxMatches ?? 0, "max_matches", 0, MAX_MATCHES) || DEFAULT_MAX_MATCHES;
  const paths = input.paths ?? [];
  const globs = input.globs ?? [];
  if (paths.length > MAX_PATHS)
    throw new GatewayError("invalid_argument", `at most ${MAX_PATHS} paths`, { param: "paths" });
  if (globs.length > MAX_GLOBS)
    throw new GatewayError("invalid_argument", `at most ${MAX_GLOBS} globs`, { param: "globs" });
  let overrides: OverrideGlobs;
  try {
    overrides = new OverrideGlobs(globs);
  } catch (err) {
    if (err instanceof GlobError) throw new GatewayError("invalid_argument", err.message, { param: err.field });
    throw err;
  }
  const root = roots.get(input.root);
  const targets: GrepTarget[] = [];
  for (const [i, p] of paths.entries()) {
    const r = await roots.resolve(p, { root: root.name, field: `paths[${i}]` });
    if (!r.stats) throw new GatewayError("not_found", `no such file or directory: ${r.rel}`, { param: `paths[${i}]` });
    // rg and the walker see the path as the client named it; resolve() has checked where it leads.
    targets.push({ rel: r.rel, isDir: r.stats.isDirectory() });
  }
  const plan: GrepPlan = {
    rootDir: root.dir,
    rootName: root.name,
    targets: targets.some((t) => t.rel === "") ? [] : targets,
    filter: {
      includeHidden: !!input.includeHidden,
      respectGitignore: true,
      overrides: overrides.empty ? undefined : overrides,
    },
    globs,
    contextLines,
    maxMatches,
    timeoutMs: opts.timeoutMs ?? 30_000,
    maxFileBytes: opts.maxFileBytes ?? 64 * 1024 * 1024,
    signal: opts.signal,
  };
  const collector = new MatchCollector(root.name, maxMatches, contextLines);
  const engine = opts.engine ?? "auto";
  const rg = engine === "builtin" ? undefined : (opts.tools ?? new SystemTools()).path("rg");
  if (engine === "ripgrep" && !rg) {
    throw new GatewayError("failed_precondition", "grep engine ripgrep is not installed: install ripgrep", {
      code: "missing_system_tool",
    });
  }
  const { filesSearched } = rg
    ? await grepRipgrep(rg, plan, pattern, input.pattern, collector)
    : await grepBuiltin(plan, pattern, collector);
  return {
    matches: collector.matches,
    truncated: collector.truncated,
    filesSearched,
    engine: rg ? "ripgrep" : "builtin",
  };
}

function boundedInt(v: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new GatewayError("invalid_argument", `${field} must be an integer from ${min} to ${max}`, { param: field });
  }
  return v;
}
