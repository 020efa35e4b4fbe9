import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SearchRoots } from "../../src/search/roots.js";
import { locateStackTrace, parseStackTrace } from "../../src/search/stack-trace.js";

let base: string;
let rootDir: string;
let roots: SearchRoots;
const numbered = (n: number) => Array.from({ length: n }, (_, i) => `L${i + 1}`).join("\n") + "\n";

beforeAll(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), "trace-")));
  rootDir = path.join(base, "proj");
  for (const f of ["packages/app/src/server.ts", "app/main.py", "cmd/tool/main.go", "src/main.rs"]) {
    await mkdir(path.dirname(path.join(rootDir, f)), { recursive: true });
    await writeFile(path.join(rootDir, f), numbered(40));
  }
  roots = await SearchRoots.create([rootDir]);
});
afterAll(() => rm(base, { recursive: true, force: true }));

const NODE = `TypeError: boom
    at handle (${"ROOT"}/packages/app/src/server.ts:12:7)
    at async Server.run (file://${"ROOT"}/packages/app/src/server.ts:20:3)
    at src/server.ts:30:1
    at node:internal/process/task_queues:95:5`;
const PYTHON = `Traceback (most recent call last):
  File "/srv/deploy/app/main.py", line 5, in <module>
    main()
  File "<frozen importlib._bootstrap>", line 1, in _find_and_load
ValueError: bad`;
const GO = `panic: oops

goroutine 1 [running]:
main.run(0x1)
\t/home/ci/work/cmd/tool/main.go:17 +0x1d
main.main()
\t/home/ci/work/cmd/tool/main.go:9 +0x25`;
const RUST = `thread 'main' panicked at src/main.rs:3:5:
boom
stack backtrace:
   0: app::inner
             at ./src/main.rs:8:9
   1: app::main
             at /build/app/src/main.rs:2:5`;

describe("parseStackTrace", () => {
  it("parses frames of each format with function, line and column", () => {
    const node = parseStackTrace(NODE.replaceAll("ROOT", "/x"));
    expect(node.map((f) => [f.format, f.function, f.line, f.column])).toEqual([
      ["node", "handle", 12, 7],
      ["node", "Server.run", 20, 3],
      ["node", "", 30, 1],
      ["node", "", 95, 5],
    ]);
    expect(parseStackTrace(PYTHON).map((f) => [f.format, f.tracePath, f.line, f.function])).toEqual([
      ["python", "/srv/deploy/app/main.py", 5, "<module>"],
      ["python", "<frozen importlib._bootstrap>", 1, "_find_and_load"],
    ]);
    expect(parseStackTrace(GO).map((f) => [f.format, f.function, f.line])).toEqual([
      ["go", "main.run", 17],
      ["go", "main.main", 9],
    ]);
    expect(parseStackTrace(RUST).map((f) => [f.format, f.function, f.tracePath, f.line, f.column])).toEqual([
      ["rust", "", "src/main.rs", 3, 5],
      ["rust", "app::inner", "./src/main.rs", 8, 9],
      ["rust", "app::main", "/build/app/src/main.rs", 2, 5],
    ]);
  });
});

describe("locateStackTrace", () => {
  it("maps absolute paths under a root, file:// URLs and relative suffixes to snippets", async () => {
    const frames = await locateStackTrace(roots, { text: NODE.replaceAll("ROOT", rootDir), contextLines: 1 });
    expect(frames.map((f) => [f.path, f.startLine, f.endLine])).toEqual([
      ["packages/app/src/server.ts", 11, 13],
      ["packages/app/src/server.ts", 19, 21],
      ["packages/app/src/server.ts", 29, 31],
    ]);
    expect(frames[0].snippet).toBe("L11\nL12\nL13\n");
    expect(frames.every((f) => f.resolved && f.root === "proj")).toBe(true);
  });

  it("finds files from other machines by suffix (Python, Go, Rust)", async () => {
    const py = await locateStackTrace(roots, { text: PYTHON });
    expect(py.map((f) => [f.path, f.startLine, f.endLine])).toEqual([["app/main.py", 2, 8]]);
    const go = await locateStackTrace(roots, { text: GO, contextLines: 0 });
    expect(go.map((f) => `${f.path}:${f.startLine}-${f.endLine}`)).toEqual([
      "cmd/tool/main.go:14-20",
      "cmd/tool/main.go:6-12",
    ]);
    const rust = await locateStackTrace(roots, { text: RUST, maxFrames: 2 });
    expect(rust.map((f) => `${f.path}:${f.line}`)).toEqual(["src/main.rs:3", "src/main.rs:8"]);
  });

  it("keeps unresolved frames only on request and never reads outside the roots", async () => {
    const text = "    at x (/etc/passwd:1:1)\n    at y (../../etc/passwd:1:1)\n" + NODE.replaceAll("ROOT", "/nowhere");
    const only = await locateStackTrace(roots, { text });
    expect(only.map((f) => f.path)).toEqual([
      "packages/app/src/server.ts",
      "packages/app/src/server.ts",
      "packages/app/src/server.ts",
    ]);
    const all = await locateStackTrace(roots, { text, includeUnresolved: true });
    expect(all.filter((f) => !f.resolved).map((f) => f.tracePath)).toEqual([
      "/etc/passwd",
      "../../etc/passwd",
      "node:internal/process/task_queues",
    ]);
    expect(all.every((f) => f.resolved || f.snippet === "")).toBe(true);
  });
});
