/**
 * The pre-initialised PGlite template: a `dumpDataDir('gzip')` tarball of a freshly initdb'd cluster with
 * the vector extension created, cached per PGlite + pgvector version. Restoring it (~0.5 s) replaces
 * initdb (~2-4 s) for every fresh data directory and every in-memory test database.
 *
 * Cache directory: `cacheDir` argument, else AGENTGATE_CACHE_DIR, else `<project>/node_modules/.cache/agentgate`
 * and, when that is not writable, `${XDG_CACHE_HOME:-~/.cache}/agentgate`.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { promisify } from "node:util";
import type { Logger } from "pino";

const gunzip = promisify(zlib.gunzip);

/** Bump when what the template contains changes (e.g. more extensions created in it). */
const TEMPLATE_FORMAT = 1;

export interface TemplateVersions {
  pglite: string;
  pgvector: string;
}

let versionsMemo: TemplateVersions | undefined;

/** Installed PGlite and pgvector-extension versions, read from their package.json files. */
export function templateVersions(): TemplateVersions {
  if (!versionsMemo) {
    versionsMemo = {
      pglite: packageVersion("@electric-sql/pglite"),
      pgvector: packageVersion("@electric-sql/pglite-pgvector"),
    };
  }
  return versionsMemo;
}

export function templateFileName(v: TemplateVersions = templateVersions()): string {
  return `pglite-${v.pglite}-pgvector-${v.pgvector}-t${TEMPLATE_FORMAT}.tar.gz`;
}

/** Cache directories in order of preference. Exported for tests. */
export function cacheDirCandidates(
  opts: { cacheDir?: string; env?: NodeJS.ProcessEnv; projectRoot?: string; home?: string } = {},
): string[] {
  if (opts.cacheDir) return [path.resolve(opts.cacheDir)];
  const env = opts.env ?? process.env;
  if (env.AGENTGATE_CACHE_DIR) return [path.resolve(env.AGENTGATE_CACHE_DIR)];
  const root = opts.projectRoot ?? projectRoot();
  const xdg = env.XDG_CACHE_HOME || path.join(opts.home ?? os.homedir(), ".cache");
  return [path.join(root, "node_modules", ".cache", "agentgate"), path.join(xdg, "agentgate")];
}

/** First existing template file among the candidates. */
export function findTemplateFile(candidates: string[] = cacheDirCandidates()): string | undefined {
  const name = templateFileName();
  for (const dir of candidates) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  return undefined;
}

/**
 * Writes the gzip tarball atomically (temp file + rename) into the first writable candidate.
 * Returns the file written, or undefined with the reasons when none was writable.
 */
export function writeTemplateFile(
  gz: Uint8Array,
  candidates: string[] = cacheDirCandidates(),
): { file?: string; errors: string[] } {
  const errors: string[] = [];
  for (const dir of candidates) {
    const file = path.join(dir, templateFileName());
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      mkdirp(dir);
      fs.writeFileSync(tmp, gz);
      fs.renameSync(tmp, file);
      return { file, errors };
    } catch (err) {
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        /* the directory itself is unusable */
      }
      errors.push(`${dir}: ${(err as Error).message}`);
    }
  }
  return { errors };
}

/** A template ready to hand to PGlite: the uncompressed tar (PGlite then skips its own gunzip). */
export interface LoadedTemplate {
  tar: Uint8Array;
  /** Where it came from or was written to (undefined: built but nowhere writable). */
  file?: string;
  /** True when it was built (initdb) by this call rather than read from the cache. */
  built: boolean;
  /** True when this call wrote the file. */
  written: boolean;
}

// One read/build per cache location per process: parallel opens share it and a test worker reuses it.
// The 40 MB tar is dropped after a quiet minute so a long-running server does not keep it.
const MEMO_IDLE_MS = 60_000;
const memo = new Map<string, { promise: Promise<LoadedTemplate>; timer?: NodeJS.Timeout }>();

/** Loads the cached template, building and caching it first when missing or corrupt. */
export async function ensureTemplate(opts: { cacheDir?: string; logger?: Logger } = {}): Promise<LoadedTemplate> {
  const candidates = cacheDirCandidates({ cacheDir: opts.cacheDir });
  const key = candidates.join("\0");
  let entry = memo.get(key);
  const creator = !entry;
  if (!entry) {
    const promise = loadOrBuild(candidates, opts.logger);
    entry = { promise };
    memo.set(key, entry);
  }
  clearTimeout(entry.timer);
  const current = entry;
  current.timer = setTimeout(() => {
    if (memo.get(key) === current) memo.delete(key);
  }, MEMO_IDLE_MS);
  current.timer.unref();
  try {
    const t = await current.promise;
    return creator ? t : { ...t, built: false, written: false };
  } catch (err) {
    // A failed attempt must not poison later ones.
    if (memo.get(key) === current) {
      clearTimeout(current.timer);
      memo.delete(key);
    }
    throw err;
  }
}

/** Forget memoised templates (tests that delete or corrupt the cache file). */
export function clearTemplateMemo(): void {
  for (const { timer } of memo.values()) clearTimeout(timer);
  memo.clear();
}

async function loadOrBuild(candidates: string[], logger?: Logger): Promise<LoadedTemplate> {
  const existing = findTemplateFile(candidates);
  if (existing) {
    try {
      const tar = await readTemplateTar(existing);
      return { tar, file: existing, built: false, written: false };
    } catch (err) {
      logger?.warn({ file: existing, err: (err as Error).message }, "PGlite template unusable; rebuilding it");
      fs.rmSync(existing, { force: true });
    }
  }
  const started = performance.now();
  const gz = await buildTemplateTarball();
  const { file, errors } = writeTemplateFile(gz, candidates);
  if (file) {
    logger?.info({ file, ms: Math.round(performance.now() - started) }, "PGlite template built and cached");
  } else {
    logger?.warn(
      { errors },
      "PGlite template built but no cache directory is writable; next fresh start will initdb again",
    );
  }
  return { tar: await gunzip(gz), file, built: true, written: file !== undefined };
}

/** Reads and validates (gzip CRC + tar magic) a template file; a truncated file must never reach PGlite. */
export async function readTemplateTar(file: string): Promise<Uint8Array> {
  const tar = await gunzip(await fs.promises.readFile(file));
  if (tar.length < 1024 || tar.subarray(257, 262).toString("latin1") !== "ustar") {
    throw new Error(`${file} is not a tar archive`);
  }
  return tar;
}

/** initdb in memory, create the extensions every agentgate database gets, dump as gzip tar. */
export async function buildTemplateTarball(): Promise<Uint8Array> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { vector } = await import("@electric-sql/pglite-pgvector");
  const pg = await PGlite.create({ extensions: { vector } });
  try {
    await pg.exec("CREATE EXTENSION IF NOT EXISTS vector");
    const blob = await pg.dumpDataDir("gzip");
    return new Uint8Array(await blob.arrayBuffer());
  } finally {
    await pg.close();
  }
}

export interface BuildTemplateResult {
  file?: string;
  built: boolean;
  ms: number;
  errors: string[];
}

/** For scripts/build-pglite-template.ts: make sure the template exists in the cache. */
export async function buildTemplate(opts: { cacheDir?: string; force?: boolean } = {}): Promise<BuildTemplateResult> {
  const started = performance.now();
  const candidates = cacheDirCandidates({ cacheDir: opts.cacheDir });
  const existing = opts.force ? undefined : findTemplateFile(candidates);
  if (existing) {
    try {
      await readTemplateTar(existing);
      return { file: existing, built: false, ms: performance.now() - started, errors: [] };
    } catch {
      fs.rmSync(existing, { force: true });
    }
  }
  const gz = await buildTemplateTarball();
  const { file, errors } = writeTemplateFile(gz, candidates);
  return { file, built: true, ms: performance.now() - started, errors };
}

/** mkdir -p that cannot spin: Node's recursive mkdir loops forever on some paths (e.g. under /proc). */
function mkdirp(dir: string, depth = 0): void {
  try {
    if (fs.statSync(dir).isDirectory()) return;
    throw new Error(`${dir} is not a directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" || depth > 64) throw err;
  }
  const parent = path.dirname(dir);
  if (parent !== dir) mkdirp(parent, depth + 1);
  try {
    fs.mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
}

function packageVersion(name: string): string {
  const require = createRequire(import.meta.url);
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      const parsed = JSON.parse(fs.readFileSync(pj, "utf8")) as { name?: string; version?: string };
      if (parsed.name === name && parsed.version) return parsed.version;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the version of ${name}`);
    dir = up;
  }
}

/** The nearest directory above this module holding a package.json (the agentgate checkout). */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}
