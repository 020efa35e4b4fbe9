/**
 * Checks and normalises a TriggerSpec as a client sent it (after proto conversion): defaults filled in,
 * cron expression and time zone parsed, file-change roots and paths resolved (realpath) and confined to
 * the allowed roots. Errors are GatewayErrors naming the field (`param`).
 */
import fs from "node:fs";
import path from "node:path";
import { Cron } from "croner";
import { GatewayError } from "../../errors/gateway-error.js";
import type { JobSpec } from "../types.js";
import type { TriggerSchedule, TriggerSpec } from "./trigger-types.js";

/** A spec before validation: what the RPC layer converts a request into (unset fields undefined/empty). */
export interface TriggerSpecInput {
  name: string;
  description?: string;
  schedule?:
    | { kind: "interval"; intervalMs: number; startAt?: Date }
    | { kind: "cron"; expression: string; timeZone?: string }
    | { kind: "once"; at?: Date }
    | { kind: "file_change"; root?: string; paths?: string[]; globs?: string[]; debounceMs?: number };
  jobTemplate?: JobSpec;
  disabled?: boolean;
  allowOverlap?: boolean;
}

export interface TriggerValidationOptions {
  /** Absolute, realpath'd (see resolveAllowedRoots). */
  allowedRoots: string[];
  /** Shortest interval; 1 s unless a test lowers it. */
  minIntervalMs?: number;
  now?: Date;
}

export const MAX_NAME_LENGTH = 200;
export const DEFAULT_MIN_INTERVAL_MS = 1000;
export const MAX_INTERVAL_MS = 366 * 24 * 3600 * 1000;
export const DEFAULT_DEBOUNCE_MS = 1000;
export const MIN_DEBOUNCE_MS = 50;
export const MAX_DEBOUNCE_MS = 3600 * 1000;
const MAX_PATHS = 100;
const MAX_GLOBS = 100;
const MAX_GLOB_LENGTH = 500;

const bad = (message: string, param: string) => new GatewayError("invalid_argument", message, { param });
const denied = (message: string, param: string) => new GatewayError("permission_denied", message, { param });

/** realpath of each root; a root that does not exist (yet) is kept as its absolute path. */
export function resolveAllowedRoots(roots: string[]): string[] {
  return roots.map((r) => {
    const abs = path.resolve(r);
    try {
      return fs.realpathSync(abs);
    } catch {
      return abs;
    }
  });
}

export function isInside(root: string, p: string): boolean {
  if (p === root) return true;
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  return p.startsWith(prefix);
}

/**
 * realpath of the longest existing prefix plus the rest: a watched path may not exist yet, but a
 * symlink anywhere along it must still be followed before the containment check.
 */
export async function realpathPartial(p: string): Promise<string> {
  try {
    return await fs.promises.realpath(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const parent = path.dirname(p);
    if ((code === "ENOENT" || code === "ENOTDIR") && parent !== p) {
      return path.join(await realpathPartial(parent), path.basename(p));
    }
    throw err;
  }
}

/** The croner job that computes a cron trigger's firings (no callback: it never runs anything itself). */
export function cronFor(expression: string, timeZone: string): Cron {
  return new Cron(expression, { timezone: timeZone, mode: "5-or-6-parts", paused: true });
}

function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * `*` (within one path segment), `**` (any depth, `**​/` also zero directories) and `?`; everything
 * else literal. Own code rather than path.matchesGlob, which Node 20 marks experimental (it prints an
 * ExperimentalWarning) and which may change.
 */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        i++;
        if (glob[i + 1] === "/") {
          i++;
          re += "(?:.*/)?";
        } else {
          re += ".*";
        }
      } else {
        re += "[^/]*";
      }
    } else if (c === "?") {
      re += "[^/]";
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether a changed file (relative to the trigger's root, POSIX separators) matches: a glob without
 * `/` is matched against the file name (as in .gitignore), one with `/` against the whole relative path.
 */
export function matchesGlobs(relPath: string, globs: readonly string[]): boolean {
  if (globs.length === 0) return true;
  const base = relPath.slice(relPath.lastIndexOf("/") + 1);
  return globs.some((g) => globToRegExp(g).test(g.includes("/") ? relPath : base));
}

export async function validateTriggerSpec(input: TriggerSpecInput, o: TriggerValidationOptions): Promise<TriggerSpec> {
  const name = typeof input.name === "string" ? input.name.trim() : "";
  if (name.length < 1 || name.length > MAX_NAME_LENGTH) {
    throw bad(`name must be 1 to ${MAX_NAME_LENGTH} characters`, "spec.name");
  }
  const description = input.description ?? "";
  if (typeof description !== "string" || description.length > 10_000) {
    throw bad("description must be at most 10000 characters", "spec.description");
  }
  if (!input.jobTemplate || typeof input.jobTemplate !== "object" || Array.isArray(input.jobTemplate)) {
    throw bad("a job template is required", "spec.job_template");
  }
  return {
    name,
    description,
    schedule: await validateSchedule(input.schedule, o),
    jobTemplate: input.jobTemplate,
    disabled: input.disabled === true,
    allowOverlap: input.allowOverlap === true,
  };
}

async function validateSchedule(
  s: TriggerSpecInput["schedule"],
  o: TriggerValidationOptions,
): Promise<TriggerSchedule> {
  if (!s || typeof s !== "object") throw bad("a schedule is required (interval, cron, once or file_change)", "spec");
  switch (s.kind) {
    case "interval": {
      const min = o.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
      const ms = s.intervalMs;
      if (typeof ms !== "number" || !Number.isFinite(ms) || ms < min || ms > MAX_INTERVAL_MS) {
        throw bad(`interval must be between ${min} ms and 366 days`, "spec.interval.interval");
      }
      if (s.startAt !== undefined && !validDate(s.startAt)) {
        throw bad("start_at is not a valid time", "spec.interval.start_at");
      }
      return { kind: "interval", intervalMs: Math.round(ms), ...(s.startAt ? { startAt: new Date(s.startAt) } : {}) };
    }
    case "cron": {
      const expression = typeof s.expression === "string" ? s.expression.trim().replace(/\s+/g, " ") : "";
      const timeZone = s.timeZone || "UTC";
      if (!isValidTimeZone(timeZone)) {
        throw bad(
          `unknown time zone ${JSON.stringify(timeZone)} (an IANA name such as Europe/Berlin)`,
          "spec.cron.time_zone",
        );
      }
      let next: Date | null;
      try {
        next = cronFor(expression, timeZone).nextRun(o.now ?? new Date());
      } catch (err) {
        throw bad(
          `invalid cron expression ${JSON.stringify(expression)}: ${(err as Error).message}`,
          "spec.cron.expression",
        );
      }
      if (!next) throw bad(`cron expression ${JSON.stringify(expression)} never fires`, "spec.cron.expression");
      return { kind: "cron", expression, timeZone };
    }
    case "once":
      if (!validDate(s.at)) throw bad("once.at is required", "spec.once.at");
      return { kind: "once", at: new Date(s.at) };
    case "file_change":
      return validateFileChange(s, o);
    default:
      throw bad(`unknown schedule kind ${JSON.stringify((s as { kind: unknown }).kind)}`, "spec");
  }
}

function validDate(d: unknown): d is Date {
  return d instanceof Date && Number.isFinite(d.getTime());
}

async function validateFileChange(
  s: Extract<NonNullable<TriggerSpecInput["schedule"]>, { kind: "file_change" }>,
  o: TriggerValidationOptions,
): Promise<TriggerSchedule> {
  const roots = o.allowedRoots;
  if (roots.length === 0) {
    throw new GatewayError("failed_precondition", "file-change triggers are off: no allowed roots are configured", {
      param: "spec.file_change.root",
    });
  }
  const root = await resolveRoot(s.root ?? "", roots);

  const paths = s.paths ?? [];
  if (!Array.isArray(paths) || paths.length > MAX_PATHS) {
    throw bad(`at most ${MAX_PATHS} paths`, "spec.file_change.paths");
  }
  const normalised: string[] = [];
  for (const [i, p] of paths.entries()) {
    const param = `spec.file_change.paths[${i}]`;
    if (typeof p !== "string" || p === "" || p.includes("\0")) throw bad("a path must be a non-empty string", param);
    if (path.isAbsolute(p)) throw bad(`path ${JSON.stringify(p)} must be relative to the root`, param);
    const lexical = path.resolve(root, p);
    if (!isInside(root, lexical)) throw denied(`path ${JSON.stringify(p)} is outside the root`, param);
    const real = await realpathPartial(lexical);
    if (!isInside(root, real)) {
      throw denied(`path ${JSON.stringify(p)} leads outside the root through a symbolic link`, param);
    }
    normalised.push(path.relative(root, lexical).split(path.sep).join("/") || ".");
  }

  const globs = s.globs ?? [];
  if (!Array.isArray(globs) || globs.length > MAX_GLOBS)
    throw bad(`at most ${MAX_GLOBS} globs`, "spec.file_change.globs");
  for (const [i, g] of globs.entries()) {
    if (typeof g !== "string" || g === "" || g.length > MAX_GLOB_LENGTH) {
      throw bad(`a glob must be 1 to ${MAX_GLOB_LENGTH} characters`, `spec.file_change.globs[${i}]`);
    }
  }

  const debounceMs = s.debounceMs || DEFAULT_DEBOUNCE_MS;
  if (!Number.isFinite(debounceMs) || debounceMs < MIN_DEBOUNCE_MS || debounceMs > MAX_DEBOUNCE_MS) {
    throw bad(`debounce must be between ${MIN_DEBOUNCE_MS} ms and 1 h`, "spec.file_change.debounce");
  }
  return {
    kind: "file_change",
    root,
    paths: [...new Set(normalised)],
    globs: [...globs],
    debounceMs: Math.round(debounceMs),
  };
}

/**
 * Empty: the first allowed root. A bare name: the allowed root with that base name (the proto's
 * "name of the allowed root"). An absolute path: must be, after realpath, an allowed root or inside one.
 */
const notAllowed = (given: string) =>
  denied(`root ${JSON.stringify(given)} is not an allowed root or inside one`, "spec.file_change.root");

async function resolveRoot(given: string, roots: string[]): Promise<string> {
  const param = "spec.file_change.root";
  if (given === "") return roots[0]!;
  if (!path.isAbsolute(given)) {
    const byName = roots.filter((r) => path.basename(r) === given);
    if (byName.length === 1) return byName[0]!;
    throw bad(
      byName.length > 1
        ? `root name ${JSON.stringify(given)} is ambiguous; give the absolute path`
        : `root ${JSON.stringify(given)} is not an allowed root`,
      param,
    );
  }
  let real: string;
  try {
    real = await fs.promises.realpath(given);
  } catch {
    // Say "does not exist" only inside the allowed roots: outside them it would probe the file system.
    if (!roots.some((r) => isInside(r, path.resolve(given)))) throw notAllowed(given);
    throw bad(`root ${JSON.stringify(given)} does not exist`, param);
  }
  if (!roots.some((r) => isInside(r, real))) throw notAllowed(given);
  const st = await fs.promises.stat(real);
  if (!st.isDirectory()) throw bad(`root ${JSON.stringify(given)} is not a directory`, param);
  return real;
}
