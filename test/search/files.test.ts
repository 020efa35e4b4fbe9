import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { listFiles } from "../../src/search/files/list-files.js";
import { readFileLines } from "../../src/search/files/read-file.js";
import { looksBinary, sha256Hex } from "../../src/search/files/text.js";
import { SearchRoots } from "../../src/search/roots.js";

let base: string;
let rootDir: string;
let roots: SearchRoots;

beforeAll(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), "files-")));
  rootDir = path.join(base, "proj");
  for (const d of ["src/lib", "node_modules/pkg", ".git", ".hidden", "docs"]) {
    await mkdir(path.join(rootDir, d), { recursive: true });
  }
  await writeFile(path.join(rootDir, ".gitignore"), "node_modules/\n*.log\n");
  await writeFile(
    path.join(rootDir, "src/a.ts"),
    Array.from({ length: 100 }, (_, i) => `line ${i + 1}`).join("\n") + "\n",
  );
  await writeFile(path.join(rootDir, "src/lib/b.ts"), "export const b = 1;\n");
  await writeFile(path.join(rootDir, "src/x.log"), "log\n");
  await writeFile(path.join(rootDir, "node_modules/pkg/index.js"), "x\n");
  await writeFile(path.join(rootDir, ".git/config"), "[core]\n");
  await writeFile(path.join(rootDir, ".hidden/h.txt"), "h\n");
  await writeFile(path.join(rootDir, "docs/readme.md"), "# hi\n");
  await writeFile(path.join(rootDir, "bin.dat"), Buffer.from([1, 2, 0, 3]));
  await writeFile(path.join(rootDir, "latin1.txt"), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
  await writeFile(path.join(rootDir, "empty.txt"), "");
  await writeFile(path.join(rootDir, "nonl.txt"), "one\ntwo");
  await writeFile(path.join(base, "secret.txt"), "secret\n");
  await symlink(path.join(base, "secret.txt"), path.join(rootDir, "leak.txt"));
  roots = await SearchRoots.create([rootDir]);
});
afterAll(() => rm(base, { recursive: true, force: true }));

async function kindOf(p: Promise<unknown>) {
  const e = await p.then(
    () => undefined,
    (err) => err,
  );
  expect(e).toBeInstanceOf(GatewayError);
  return (e as GatewayError).kind;
}

describe("listFiles", () => {
  it("lists one level, directories first, without ignored, hidden or .git entries", async () => {
    const r = await listFiles(roots, {});
    expect(r.entries.map((e) => `${e.type}:${e.path}`)).toEqual([
      "directory:docs",
      "directory:src",
      "file:bin.dat",
      "file:empty.txt",
      "file:latin1.txt",
      "symlink:leak.txt",
      "file:nonl.txt",
    ]);
    expect(r.truncated).toBe(false);
  });

  it("shows hidden and ignored entries on request, never .git", async () => {
    const r = await listFiles(roots, { includeHidden: true, includeIgnored: true, depth: 3, layout: "flat" });
    const paths = r.entries.map((e) => e.path);
    expect(paths).toContain(".hidden/h.txt");
    expect(paths).toContain("node_modules/pkg/index.js");
    expect(paths).toContain("src/x.log");
    expect(paths.some((p) => p === ".git" || p.startsWith(".git/"))).toBe(false);
  });

  it("builds a tree to a depth and marks what the limit left out", async () => {
    const r = await listFiles(roots, { layout: "tree", depth: 2 });
    const src = r.entries.find((e) => e.name === "src")!;
    expect(src.children.map((e) => e.name)).toEqual(["lib", "a.ts"]);
    expect(src.children[0].hasMoreChildren).toBe(true);
    expect(src.children[0].children).toEqual([]);
    const deep = await listFiles(roots, { layout: "tree", depth: 3 });
    const lib = deep.entries.find((e) => e.name === "src")!.children[0];
    expect(lib.children.map((e) => e.path)).toEqual(["src/lib/b.ts"]);
  });

  it("filters files by glob and keeps only directories holding a match", async () => {
    const r = await listFiles(roots, { globs: ["*.ts"], depth: 5 });
    expect(r.entries.map((e) => e.path)).toEqual(["src", "src/lib", "src/a.ts", "src/lib/b.ts"]);
  });

  it("caps the number of entries", async () => {
    const r = await listFiles(roots, { depth: 5, maxEntries: 3 });
    expect(r.entries).toHaveLength(3);
    expect(r.truncated).toBe(true);
  });

  it("refuses paths outside the root", async () => {
    expect(await kindOf(listFiles(roots, { path: "../" }))).toBe("invalid_argument");
    expect(await kindOf(listFiles(roots, { path: "/etc" }))).toBe("invalid_argument");
    expect(await kindOf(listFiles(roots, { path: ".git" }))).toBe("permission_denied");
  });
});

describe("readFileLines", () => {
  it("reads a whole file with its hash and line count", async () => {
    const r = await readFileLines(roots, { path: "src/lib/b.ts" });
    expect(r.content).toBe("export const b = 1;\n");
    expect(r).toMatchObject({ startLine: 1, endLine: 1, totalLines: 1, binary: false, language: "typescript" });
    expect(r.sha256).toBe(sha256Hex("export const b = 1;\n"));
  });

  it("reads a range and a focus line with context", async () => {
    const range = await readFileLines(roots, { path: "src/a.ts", range: { startLine: 10, endLine: 12 } });
    expect(range.content).toBe("line 10\nline 11\nline 12\n");
    expect(range).toMatchObject({ startLine: 10, endLine: 12, totalLines: 100 });
    const focus = await readFileLines(roots, { path: "src/a.ts", focus: { line: 99, contextLines: 2 } });
    expect(focus).toMatchObject({ startLine: 97, endLine: 100, focusLine: 99 });
    const dflt = await readFileLines(roots, { path: "src/a.ts", focus: { line: 50 } });
    expect([dflt.startLine, dflt.endLine]).toEqual([25, 75]);
    expect(await kindOf(readFileLines(roots, { path: "src/a.ts", range: { startLine: 101 } }))).toBe(
      "invalid_argument",
    );
  });

  it("cuts at a line boundary when over max_bytes", async () => {
    const r = await readFileLines(roots, { path: "src/a.ts", maxBytes: 20 });
    expect(r.content).toBe("line 1\nline 2\n");
    expect(r).toMatchObject({ truncated: true, endLine: 2 });
  });

  it("handles empty files and a last line without newline", async () => {
    expect(await readFileLines(roots, { path: "empty.txt" })).toMatchObject({ content: "", totalLines: 0 });
    expect(await readFileLines(roots, { path: "nonl.txt" })).toMatchObject({ content: "one\ntwo", totalLines: 2 });
  });

  it("detects binary files and returns no content", async () => {
    expect(await readFileLines(roots, { path: "bin.dat" })).toMatchObject({ binary: true, content: "", sizeBytes: 4 });
    expect(await readFileLines(roots, { path: "latin1.txt" })).toMatchObject({ binary: true });
    expect(looksBinary(Buffer.from("héllo"))).toBe(false);
    // A multi-byte character cut at the sniff boundary is not binary.
    const big = Buffer.concat([Buffer.alloc(8191, 0x61), Buffer.from("é"), Buffer.alloc(10, 0x61)]);
    expect(looksBinary(big)).toBe(false);
  });

  it("refuses attacks: ../../etc/passwd, absolute paths, symlinks out of the root, .git", async () => {
    expect(await kindOf(readFileLines(roots, { path: "../../etc/passwd" }))).toBe("invalid_argument");
    expect(await kindOf(readFileLines(roots, { path: "/etc/passwd" }))).toBe("invalid_argument");
    expect(await kindOf(readFileLines(roots, { path: "leak.txt" }))).toBe("permission_denied");
    expect(await kindOf(readFileLines(roots, { path: ".git/config" }))).toBe("permission_denied");
    expect(await kindOf(readFileLines(roots, { path: "missing.txt" }))).toBe("not_found");
    expect(await kindOf(readFileLines(roots, { path: "src" }))).toBe("invalid_argument");
  });
});
