import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { IgnoreScope, parseGitignore } from "../../src/search/files/gitignore.js";
import { OverrideGlobs } from "../../src/search/files/glob.js";
import { SearchRoots } from "../../src/search/roots.js";

let base: string;
let rootDir: string;
let roots: SearchRoots;

async function fails(p: Promise<unknown>, kind: string, param?: string) {
  const err = await p.then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  expect((err as GatewayError).kind).toBe(kind);
  if (param) expect((err as GatewayError).param).toBe(param);
}

beforeAll(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), "roots-")));
  rootDir = path.join(base, "proj");
  await mkdir(path.join(rootDir, "src/inner"), { recursive: true });
  await mkdir(path.join(rootDir, ".git"), { recursive: true });
  await mkdir(path.join(base, "outside"), { recursive: true });
  await writeFile(path.join(rootDir, "src/a.ts"), "a\n");
  await writeFile(path.join(base, "outside/secret.txt"), "secret\n");
  await symlink(path.join(base, "outside/secret.txt"), path.join(rootDir, "leak.txt"));
  await symlink(path.join(base, "outside"), path.join(rootDir, "leakdir"));
  await symlink(path.join(base, "outside/nothing-yet.txt"), path.join(rootDir, "dangling.txt"));
  await symlink("src", path.join(rootDir, "srclink"));
  await symlink(".git", path.join(rootDir, "gitlink"));
  roots = await SearchRoots.create([rootDir, path.join(base, "outside")]);
});
afterAll(() => rm(base, { recursive: true, force: true }));

describe("SearchRoots.resolve", () => {
  it("names roots by directory and resolves relative paths in the first root", async () => {
    expect(roots.list().map((r) => r.name)).toEqual(["proj", "outside"]);
    const r = await roots.resolve("src/./a.ts");
    expect(r.rel).toBe("src/a.ts");
    expect(r.abs).toBe(path.join(rootDir, "src/a.ts"));
    expect(r.stats?.isFile()).toBe(true);
    expect((await roots.resolve("")).rel).toBe("");
  });

  it("refuses .. segments, NUL bytes and unknown roots", async () => {
    await fails(roots.resolve("../../etc/passwd"), "invalid_argument", "path");
    await fails(roots.resolve("src/../../proj/src/a.ts"), "invalid_argument");
    await fails(roots.resolve("src/a.ts\0"), "invalid_argument");
    await fails(roots.resolve("a", { root: "nope" }), "invalid_argument", "root");
  });

  it("accepts absolute paths only inside a root", async () => {
    const r = await roots.resolve(path.join(rootDir, "src/a.ts"));
    expect(r.rel).toBe("src/a.ts");
    await fails(roots.resolve("/etc/passwd"), "invalid_argument");
    await fails(roots.resolve(path.join(base, "outside/secret.txt"), { root: "proj" }), "invalid_argument");
    // With no root named, the root that contains it is used.
    expect((await roots.resolve(path.join(base, "outside/secret.txt"))).root.name).toBe("outside");
  });

  it("refuses symlinks that lead out of the root, even dangling ones", async () => {
    await fails(roots.resolve("leak.txt"), "permission_denied", "path");
    await fails(roots.resolve("leakdir/secret.txt"), "permission_denied");
    await fails(roots.resolve("leakdir/new.txt", { field: "paths[0]" }), "permission_denied", "paths[0]");
    await fails(roots.resolve("dangling.txt"), "permission_denied");
    const ok = await roots.resolve("srclink/a.ts");
    expect(ok.abs).toBe(path.join(rootDir, "src/a.ts"));
  });

  it("never exposes .git, directly or through a symlink", async () => {
    await fails(roots.resolve(".git/config"), "permission_denied");
    await fails(roots.resolve("src/.git"), "permission_denied");
    await fails(roots.resolve("gitlink/config"), "permission_denied");
  });
});

describe("gitignore", () => {
  it("matches like git: anchoring, directories, negation, **", () => {
    const rules = parseGitignore(
      ["# c", "*.log", "!keep.log", "/build", "out/", "docs/**/*.tmp", "a/**/b", "\\#hash", "trail\\ "].join("\n"),
    );
    const m = (rel: string, dir = false) => {
      for (let i = rules.length - 1; i >= 0; i--) {
        const r = rules[i];
        if (r.dirOnly && !dir) continue;
        if (r.re.testExact(rel)) return r.negate ? "whitelist" : "ignore";
      }
      return undefined;
    };
    expect(m("x.log")).toBe("ignore");
    expect(m("deep/x.log")).toBe("ignore");
    expect(m("deep/keep.log")).toBe("whitelist");
    expect(m("build", true)).toBe("ignore");
    expect(m("src/build", true)).toBeUndefined();
    expect(m("out", true)).toBe("ignore");
    expect(m("out")).toBeUndefined();
    expect(m("sub/out", true)).toBe("ignore");
    expect(m("docs/x.tmp")).toBe("ignore");
    expect(m("docs/a/b/x.tmp")).toBe("ignore");
    expect(m("a/b")).toBe("ignore");
    expect(m("a/x/y/b")).toBe("ignore");
    expect(m("#hash")).toBe("ignore");
    expect(m("trail ")).toBe("ignore");
  });

  it("re-roots nested .gitignore files and lets deeper ones win", async () => {
    await writeFile(path.join(rootDir, ".gitignore"), "*.gen\n");
    await writeFile(path.join(rootDir, "src/.gitignore"), "!keep.gen\n/local.txt\n");
    const scope = await IgnoreScope.forDirectory(rootDir, "src");
    expect(scope.match("src/x.gen", false)).toBe("ignore");
    expect(scope.match("src/keep.gen", false)).toBe("whitelist");
    expect(scope.match("src/local.txt", false)).toBe("ignore");
    expect(scope.match("src/inner/local.txt", false)).toBeUndefined();
  });

  it("request globs follow ripgrep's override rules", () => {
    const g = new OverrideGlobs(["*.ts", "!*.d.ts"]);
    expect(g.matched("src/a.ts", false)).toBe("whitelist");
    expect(g.matched("src/a.d.ts", false)).toBe("ignore");
    expect(g.matched("src/a.js", false)).toBe("ignore");
    expect(g.matched("src", true)).toBeUndefined();
    // Pathological globs are linear (re2js), not exponential.
    const t = Date.now();
    new OverrideGlobs(["*a*a*a*a*a*a*a*a*a*a*a*b"]).matched("a".repeat(200), false);
    expect(Date.now() - t).toBeLessThan(1000);
  });
});
