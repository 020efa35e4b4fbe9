import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { grep, type GrepOptions } from "../../src/search/grep/grep.js";
import { ripgrepArgs } from "../../src/search/grep/ripgrep.js";
import { compilePattern } from "../../src/search/grep/pattern.js";
import type { GrepInput } from "../../src/search/grep/types.js";
import { SearchRoots } from "../../src/search/roots.js";

const RG = "/usr/bin/rg";
const hasRg = existsSync(RG);
const tools = { path: (t: string) => (t === "rg" && hasRg ? RG : undefined) };
const engines: [string, GrepOptions][] = [
  ["builtin", { engine: "builtin" }],
  ...(hasRg ? ([["ripgrep", { engine: "ripgrep", tools }]] as [string, GrepOptions][]) : []),
];

let base: string;
let rootDir: string;
let roots: SearchRoots;

async function put(rel: string, content: string | Buffer) {
  await mkdir(path.dirname(path.join(rootDir, rel)), { recursive: true });
  await writeFile(path.join(rootDir, rel), content);
}

beforeAll(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), "grep-")));
  rootDir = path.join(base, "proj");
  await put(".gitignore", "ignored/\n*.log\n");
  await put("a.txt", "alpha needle\nbeta\nNeedle gamma\nneedle needle\n");
  await put("a/b.txt", "one\ntwo needle\nthree\n");
  await put("a.b/c.txt", "needle in a.b\n");
  await put("ignored/x.txt", "needle ignored\n");
  await put("debug.log", "needle log\n");
  await put("sub/.gitignore", "local.txt\n!keep.log\n");
  await put("sub/local.txt", "needle local\n");
  await put("sub/keep.log", "needle kept\n");
  await put("sub/deep/local.txt", "needle deep local\n");
  await put(".hidden/h.txt", "needle hidden\n");
  await put(".git/config", "needle in git\n");
  await put("bin.dat", Buffer.concat([Buffer.from("needle\n"), Buffer.from([0, 1, 2])]));
  await put("latin1.txt", Buffer.concat([Buffer.from("caf"), Buffer.from([0xe9]), Buffer.from(" needle\n")]));
  await put("utf8.txt", "héllo needle wörld\n");
  await put(
    "ctx.txt",
    ["l1", "l2", "hit one", "l4", "hit two", "l6", "l7", "l8", "hit three", "l10"].join("\n") + "\n",
  );
  await put("words.txt", "foo foo -foo foobar barfoo\n");
  await put("dash.txt", "run with --pre=cat to preprocess\n-e flag\n");
  await put("crlf.txt", "windows needle\r\nline two\r\n");
  await put("many/f1.txt", "m\nm\nm\n");
  await put("many/f2.txt", "m\nm\nm\n");
  await put("many/f3.txt", "m\nm\nm\n");
  await put("redos.txt", "a".repeat(50_000) + "!\n");
  await writeFile(path.join(base, "outside.txt"), "needle outside\n");
  await symlink(path.join(base, "outside.txt"), path.join(rootDir, "leak.txt"));
  await symlink(path.join(base), path.join(rootDir, "leakdir"));
  roots = await SearchRoots.create([rootDir]);
});
afterAll(() => rm(base, { recursive: true, force: true }));

const key = (r: Awaited<ReturnType<typeof grep>>) =>
  r.matches.map((m) => `${m.path}:${m.line}:${m.column}:${m.submatches.map((s) => `${s.start}-${s.end}`).join(",")}`);

describe.each(engines)("grep (%s)", (engine, opts) => {
  const run = (input: GrepInput) => grep(roots, input, opts);

  it("finds matches in path order, respecting .gitignore at every depth, skipping hidden, .git and binary", async () => {
    const r = await run({ pattern: "needle" });
    expect(r.engine).toBe(engine);
    expect([...new Set(r.matches.map((m) => m.path))]).toEqual([
      "a/b.txt",
      "a.b/c.txt",
      "a.txt",
      "crlf.txt",
      "latin1.txt",
      "sub/keep.log",
      "utf8.txt",
    ]);
    const a = r.matches.filter((m) => m.path === "a.txt");
    expect(a.map((m) => m.line)).toEqual([1, 4]);
    expect(a[1].submatches).toEqual([
      { start: 0, end: 6, text: "needle" },
      { start: 7, end: 13, text: "needle" },
    ]);
    expect(r.truncated).toBe(false);
  });

  it("reports byte offsets in the returned UTF-8 text, also for invalid UTF-8 and CRLF lines", async () => {
    const r = await run({ pattern: "needle", paths: ["utf8.txt", "latin1.txt", "crlf.txt"] });
    const utf8 = r.matches.find((m) => m.path === "utf8.txt")!;
    expect(utf8.column).toBe(8);
    expect(Buffer.from(utf8.lineText).subarray(7, 13).toString()).toBe("needle");
    const latin = r.matches.find((m) => m.path === "latin1.txt")!;
    expect(latin.lineText).toBe("caf\uFFFD needle");
    expect(Buffer.from(latin.lineText).subarray(latin.submatches[0].start, latin.submatches[0].end).toString()).toBe(
      "needle",
    );
    expect(r.matches.find((m) => m.path === "crlf.txt")!.lineText).toBe("windows needle");
  });

  it("handles case modes, literal and whole word", async () => {
    expect((await run({ pattern: "needle", caseMode: "insensitive", paths: ["a.txt"] })).matches).toHaveLength(3);
    expect((await run({ pattern: "needle", caseMode: "smart", paths: ["a.txt"] })).matches).toHaveLength(3);
    expect((await run({ pattern: "Needle", caseMode: "smart", paths: ["a.txt"] })).matches).toHaveLength(1);
    expect((await run({ pattern: "a.b", literal: true })).matches.map((m) => m.path)).toEqual(["a.b/c.txt"]);
    const w = await run({ pattern: "foo", wholeWord: true, paths: ["words.txt"] });
    expect(w.matches[0].submatches.map((s) => s.start)).toEqual([0, 4, 9]);
  });

  it("searches a pattern beginning with --pre= as text and runs nothing", async () => {
    const marker = path.join(base, "pwned");
    const r = await run({ pattern: `--pre=touch ${marker}` });
    expect(r.matches).toEqual([]);
    const r2 = await run({ pattern: "--pre=cat" });
    expect(r2.matches.map((m) => m.path)).toEqual(["dash.txt"]);
    const r3 = await run({ pattern: "-e" });
    expect(r3.matches.map((m) => `${m.path}:${m.line}`)).toEqual(["dash.txt:2"]);
    expect(existsSync(marker)).toBe(false);
  });

  it("returns promptly for (a+)+$ on a long line", async () => {
    const t = Date.now();
    const r = await run({ pattern: "(a+)+$", paths: ["redos.txt"] });
    expect(r.matches).toEqual([]);
    expect(Date.now() - t).toBeLessThan(3000);
  });

  it("caps matches exactly across files and says whether more exist", async () => {
    for (const [cap, truncated] of [
      [4, true],
      [8, true],
      [9, false],
      [20, false],
    ] as const) {
      const r = await run({ pattern: "m", paths: ["many"], maxMatches: cap });
      expect(r.matches).toHaveLength(Math.min(cap, 9));
      expect(r.truncated).toBe(truncated);
    }
    const r = await run({ pattern: "m", paths: ["many"], maxMatches: 4 });
    expect(r.matches.map((m) => `${m.path}:${m.line}`)).toEqual([
      "many/f1.txt:1",
      "many/f1.txt:2",
      "many/f1.txt:3",
      "many/f2.txt:1",
    ]);
  });

  it("attaches context lines", async () => {
    const r = await run({ pattern: "hit", paths: ["ctx.txt"], contextLines: 2 });
    expect(r.matches.map((m) => m.line)).toEqual([3, 5, 9]);
    expect(r.matches[0].contextBefore).toEqual([
      { line: 1, text: "l1" },
      { line: 2, text: "l2" },
    ]);
    expect(r.matches[0].contextAfter.map((c) => c.line)).toEqual([4, 5]);
    expect(r.matches[2].contextAfter.map((c) => c.text)).toEqual(["l10"]);
    const capped = await run({ pattern: "hit", paths: ["ctx.txt"], contextLines: 1, maxMatches: 1 });
    expect(capped.matches[0].contextAfter).toEqual([{ line: 4, text: "l4" }]);
    expect(capped.truncated).toBe(true);
  });

  it("applies globs with ripgrep's override rules, hidden files on request, never .git", async () => {
    const txt = await run({ pattern: "needle", globs: ["*.log"] });
    // An include glob overrides .gitignore for files (rg semantics) but never enters ignored dirs.
    expect(txt.matches.map((m) => m.path)).toEqual(["debug.log", "sub/keep.log"]);
    const not = await run({ pattern: "needle", globs: ["!a/**", "!*.txt"] });
    expect(not.matches.map((m) => m.path)).toEqual(["sub/keep.log"]);
    const hidden = await run({ pattern: "needle", includeHidden: true });
    expect(hidden.matches.map((m) => m.path)).toContain(".hidden/h.txt");
    expect(hidden.matches.map((m) => m.path).some((p) => p.startsWith(".git/"))).toBe(false);
  });

  it("applies .gitignore files above a directory named in paths", async () => {
    const r = await run({ pattern: "needle", paths: ["sub/deep"] });
    expect(r.matches).toEqual([]);
    const r2 = await run({ pattern: "needle", paths: ["sub"] });
    expect(r2.matches.map((m) => m.path)).toEqual(["sub/keep.log"]);
  });

  it("refuses paths outside the root", async () => {
    for (const [p, kind] of [
      ["../../etc/passwd", "invalid_argument"],
      ["/etc", "invalid_argument"],
      ["leak.txt", "permission_denied"],
      ["leakdir", "permission_denied"],
      [".git", "permission_denied"],
    ] as const) {
      const err = await run({ pattern: "x", paths: [p] }).catch((e) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err.kind).toBe(kind);
      expect(err.param).toBe("paths[0]");
    }
  });

  it("rejects bad patterns as invalid_argument", async () => {
    for (const pattern of ["", "(unclosed", "(a)\\1", "x".repeat(2000), "a\nb"]) {
      const err = await run({ pattern }).catch((e) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err.kind).toBe("invalid_argument");
    }
  });
});

describe.runIf(hasRg)("ripgrep and builtin agree", () => {
  const cases: GrepInput[] = [
    { pattern: "needle" },
    { pattern: "needle", caseMode: "insensitive", includeHidden: true },
    { pattern: "e+d", contextLines: 1 },
    { pattern: "^[a-z]+$" },
    { pattern: "foo", wholeWord: true },
    { pattern: ".", maxMatches: 7 },
    { pattern: "needle", globs: ["**/*.txt", "!a/**"] },
    { pattern: "l\\d", paths: ["ctx.txt", "sub"], contextLines: 3 },
    { pattern: "m", paths: ["many"], maxMatches: 5, contextLines: 1 },
  ];
  it.each(cases)("same matches for %o", async (input) => {
    const a = await grep(roots, input, { engine: "builtin" });
    const b = await grep(roots, input, { engine: "ripgrep", tools });
    expect(key(b)).toEqual(key(a));
    expect(b.matches).toEqual(a.matches);
    expect(b.truncated).toBe(a.truncated);
  });

  it("agrees on a real tree (a package in node_modules)", async () => {
    const pkgRoot = await SearchRoots.create([path.resolve("node_modules/re2js")]);
    for (const input of [
      { pattern: "function\\s+\\w+", maxMatches: 300 },
      { pattern: "RE2", caseMode: "smart" as const, contextLines: 1 },
    ]) {
      const a = await grep(pkgRoot, input, { engine: "builtin" });
      const b = await grep(pkgRoot, input, { engine: "ripgrep", tools });
      expect(key(b)).toEqual(key(a));
      expect(b.truncated).toBe(a.truncated);
    }
  });

  it("passes the pattern after -e and never enables PCRE2", () => {
    const plan = {
      rootDir: "/r",
      rootName: "r",
      targets: [],
      filter: { includeHidden: false, respectGitignore: true },
      globs: ["-x"],
      contextLines: 0,
      maxMatches: 10,
      timeoutMs: 1000,
      maxFileBytes: 1000,
    };
    const args = ripgrepArgs(plan, compilePattern("--pre=cat", {}), "--pre=cat");
    expect(args[args.indexOf("--pre=cat") - 1]).toBe("-e");
    expect(args.filter((a) => a === "--pre=cat")).toHaveLength(1);
    expect(args).not.toContain("-P");
    expect(args).not.toContain("--pcre2");
    expect(args).toContain("--no-config");
    expect(args).toContain("--glob=-x");
  });
});

it("leaves no temporary ignore files behind", async () => {
  const before = (await readdir(tmpdir())).filter((n) => n.startsWith("agentgate-rg-")).length;
  if (hasRg) await grep(roots, { pattern: "x", paths: ["sub/deep"] }, { engine: "ripgrep", tools });
  const after = (await readdir(tmpdir())).filter((n) => n.startsWith("agentgate-rg-")).length;
  expect(after).toBeLessThanOrEqual(before);
});
