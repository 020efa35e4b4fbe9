import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { sha256Hex } from "../../src/search/files/text.js";
import { SearchRoots } from "../../src/search/roots.js";
import { applyPatch } from "../../src/search/write/apply-patch.js";
import type { WriteChange, WriteOptions } from "../../src/search/write/types.js";
import { writeFileAtomic } from "../../src/search/write/write-file.js";

let base: string;
let rootDir: string;
let roots: SearchRoots;
let changes: WriteChange[];
let opts: WriteOptions;
const dirs: string[] = [];

beforeEach(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), "write-")));
  dirs.push(base);
  rootDir = path.join(base, "proj");
  await mkdir(path.join(rootDir, "docs"), { recursive: true });
  await mkdir(path.join(rootDir, ".git/hooks"), { recursive: true });
  await writeFile(path.join(rootDir, "docs/a.md"), "one\ntwo\nthree\nfour\nfive\n");
  await writeFile(path.join(rootDir, "docs/b.md"), "alpha\nbeta\n");
  await writeFile(path.join(base, "outside.txt"), "outside\n");
  await symlink(path.join(base, "outside.txt"), path.join(rootDir, "leak.txt"));
  await symlink(base, path.join(rootDir, "leakdir"));
  roots = await SearchRoots.create([rootDir]);
  changes = [];
  opts = { writeEnabled: true, onChange: (c) => void changes.push(c) };
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function kindOf(p: Promise<unknown>) {
  const e = await p.then(
    () => undefined,
    (err) => err,
  );
  expect(e).toBeInstanceOf(GatewayError);
  return (e as GatewayError).kind;
}
const read = (rel: string) => readFile(path.join(rootDir, rel), "utf8");

describe("writeFileAtomic", () => {
  it("creates and replaces files, reports the change and leaves no temporary files", async () => {
    const r = await writeFileAtomic(roots, { path: "docs/new.md", content: "hi\n" }, opts);
    expect(r).toMatchObject({ path: "docs/new.md", created: true, sizeBytes: 3, sha256: sha256Hex("hi\n") });
    await writeFileAtomic(roots, { path: "docs/new.md", content: "bye\n" }, opts);
    expect(await read("docs/new.md")).toBe("bye\n");
    expect(changes.map((c) => c.paths[0].kind)).toEqual(["add", "modify"]);
    expect((await readdir(path.join(rootDir, "docs"))).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("is off unless enabled", async () => {
    expect(await kindOf(writeFileAtomic(roots, { path: "x", content: "" }, { writeEnabled: false }))).toBe(
      "permission_denied",
    );
    expect(existsSync(path.join(rootDir, "x"))).toBe(false);
  });

  it("never writes under .git, through symlinks out of the root, or outside it", async () => {
    expect(await kindOf(writeFileAtomic(roots, { path: ".git/hooks/pre-commit", content: "x" }, opts))).toBe(
      "permission_denied",
    );
    expect(await kindOf(writeFileAtomic(roots, { path: "leak.txt", content: "x" }, opts))).toBe("permission_denied");
    expect(await kindOf(writeFileAtomic(roots, { path: "leakdir/evil.txt", content: "x" }, opts))).toBe(
      "permission_denied",
    );
    expect(await kindOf(writeFileAtomic(roots, { path: "../evil.txt", content: "x" }, opts))).toBe("invalid_argument");
    expect(await kindOf(writeFileAtomic(roots, { path: "/tmp/evil.txt", content: "x" }, opts))).toBe(
      "invalid_argument",
    );
    expect(await readFile(path.join(base, "outside.txt"), "utf8")).toBe("outside\n");
    expect(existsSync(path.join(base, "evil.txt"))).toBe(false);
  });

  it("checks expected_sha256, caps size and creates parents on request", async () => {
    const cur = sha256Hex(await read("docs/b.md"));
    expect(await kindOf(writeFileAtomic(roots, { path: "docs/b.md", content: "x", expectedSha256: "00" }, opts))).toBe(
      "aborted",
    );
    await writeFileAtomic(roots, { path: "docs/b.md", content: "x\n", expectedSha256: cur }, opts);
    expect(await kindOf(writeFileAtomic(roots, { path: "docs/b.md", content: "y", expectedSha256: "" }, opts))).toBe(
      "aborted",
    );
    expect(
      await kindOf(writeFileAtomic(roots, { path: "big.txt", content: "x".repeat(11) }, { ...opts, maxFileBytes: 10 })),
    ).toBe("invalid_argument");
    expect(await kindOf(writeFileAtomic(roots, { path: "new/dir/f.md", content: "x" }, opts))).toBe("not_found");
    await writeFileAtomic(roots, { path: "new/dir/f.md", content: "x", createParents: true }, opts);
    expect(await read("new/dir/f.md")).toBe("x");
  });
});

const MODIFY = `diff --git a/docs/a.md b/docs/a.md
--- a/docs/a.md
+++ b/docs/a.md
@@ -1,3 +1,3 @@
 one
-two
+TWO
 three
@@ -4,2 +4,3 @@
 four
 five
+six
`;
const ADD_DELETE = `--- /dev/null
+++ b/docs/c.md
@@ -0,0 +1,2 @@
+new
+file
--- a/docs/b.md
+++ /dev/null
@@ -1,2 +0,0 @@
-alpha
-beta
`;

describe("applyPatch", () => {
  it("applies hunks to several files and reports what changed", async () => {
    const r = await applyPatch(roots, { patch: MODIFY + ADD_DELETE }, opts);
    expect(r.applied).toBe(true);
    expect(r.files.map((f) => [f.path, f.kind, f.hunks])).toEqual([
      ["docs/a.md", "modify", 2],
      ["docs/c.md", "add", 1],
      ["docs/b.md", "delete", 1],
    ]);
    expect(await read("docs/a.md")).toBe("one\nTWO\nthree\nfour\nfive\nsix\n");
    expect(await read("docs/c.md")).toBe("new\nfile\n");
    expect(existsSync(path.join(rootDir, "docs/b.md"))).toBe(false);
    expect(r.files[0].sha256).toBe(sha256Hex("one\nTWO\nthree\nfour\nfive\nsix\n"));
    expect(changes[0].paths.map((p) => `${p.kind}:${p.path}`).sort()).toEqual([
      "add:docs/c.md",
      "delete:docs/b.md",
      "modify:docs/a.md",
    ]);
  });

  it("finds hunks that moved and handles a missing final newline", async () => {
    await writeFile(path.join(rootDir, "docs/a.md"), "zero\nzero\none\ntwo\nthree\nfour\nfive");
    const patch = `--- a/docs/a.md
+++ b/docs/a.md
@@ -4,2 +4,2 @@
 four
-five
\\ No newline at end of file
+FIVE
`;
    await applyPatch(roots, { patch }, opts);
    expect(await read("docs/a.md")).toBe("zero\nzero\none\ntwo\nthree\nfour\nFIVE\n");
  });

  it("a hunk that does not apply changes no file and names the hunk", async () => {
    const bad = MODIFY.replace(" five\n+six", " FIVE?\n+six") + ADD_DELETE;
    const err = await applyPatch(roots, { patch: bad }, opts).catch((e) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.kind).toBe("failed_precondition");
    expect(err.message).toMatch(/hunk #2 \(@@ -4,2 \+4,3 @@\) of docs\/a\.md/);
    expect(await read("docs/a.md")).toBe("one\ntwo\nthree\nfour\nfive\n");
    expect(await read("docs/b.md")).toBe("alpha\nbeta\n");
    expect(existsSync(path.join(rootDir, "docs/c.md"))).toBe(false);
    expect(changes).toEqual([]);
  });

  it("dry runs write nothing", async () => {
    const r = await applyPatch(roots, { patch: MODIFY, dryRun: true }, opts);
    expect(r.applied).toBe(false);
    expect(r.files).toHaveLength(1);
    expect(await read("docs/a.md")).toBe("one\ntwo\nthree\nfour\nfive\n");
  });

  it("refuses .git, escaping paths, adding existing files and malformed patches", async () => {
    const add = (p: string) => `--- /dev/null\n+++ b/${p}\n@@ -0,0 +1 @@\n+x\n`;
    expect(await kindOf(applyPatch(roots, { patch: add(".git/hooks/post-checkout") }, opts))).toBe("permission_denied");
    expect(await kindOf(applyPatch(roots, { patch: add("../../evil.txt") }, opts))).toBe("invalid_argument");
    expect(await kindOf(applyPatch(roots, { patch: add("leakdir/evil.txt") }, opts))).toBe("permission_denied");
    expect(await kindOf(applyPatch(roots, { patch: add("docs/a.md") }, opts))).toBe("failed_precondition");
    expect(await kindOf(applyPatch(roots, { patch: "not a diff" }, opts))).toBe("invalid_argument");
    expect(await kindOf(applyPatch(roots, { patch: MODIFY }, { writeEnabled: false }))).toBe("permission_denied");
    expect(existsSync(path.join(base, "evil.txt"))).toBe(false);
  });

  it("applies a git rename", async () => {
    const patch = `diff --git a/docs/b.md b/docs/renamed.md
similarity index 60%
rename from docs/b.md
rename to docs/renamed.md
--- a/docs/b.md
+++ b/docs/renamed.md
@@ -1,2 +1,2 @@
 alpha
-beta
+gamma
`;
    const r = await applyPatch(roots, { patch }, opts);
    expect(r.files[0]).toMatchObject({ path: "docs/renamed.md", oldPath: "docs/b.md", kind: "rename" });
    expect(await read("docs/renamed.md")).toBe("alpha\ngamma\n");
    expect(existsSync(path.join(rootDir, "docs/b.md"))).toBe(false);
  });
});
