/**
 * The ripgrep engine runs rg in parallel (unsorted) and sorts per-file hits itself, falling back
 * to `rg --sort path` once the cap is exceeded: whatever the path, it must return exactly what the
 * builtin engine returns (the first N matches in walk order), and its hand-written reader of
 * rg --json lines must agree with JSON.parse.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grep, type GrepOptions } from "../../src/search/grep/grep.js";
import {
  MAX_RAW_LINE_BYTES,
  parseLineEvent,
  parseLineEventJson,
  type LineEvent,
} from "../../src/search/grep/rg-json.js";
import type { GrepInput } from "../../src/search/grep/types.js";
import { SearchRoots } from "../../src/search/roots.js";

const RG = "/usr/bin/rg";
const hasRg = existsSync(RG);
const tools = { path: (t: string) => (t === "rg" && hasRg ? RG : undefined) };
const builtin: GrepOptions = { engine: "builtin" };
const ripgrep: GrepOptions = { engine: "ripgrep", tools };

let base: string;
let rootDir: string;
let roots: SearchRoots;
let total = 0;

async function put(rel: string, content: string | Buffer) {
  await mkdir(path.dirname(path.join(rootDir, rel)), { recursive: true });
  await writeFile(path.join(rootDir, rel), content);
}

// Names where walk order (component by component, by bytes) differs from plain string order.
const DIRS = ["a", "a-b", "a.b", "a/b", "a/b-c", "A", "_x", "z", "z/a", "ä", "x y", "0"];

beforeAll(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), "grep-order-")));
  rootDir = path.join(base, "proj");
  let k = 0;
  for (const d of DIRS) {
    for (const f of ["f", "f.txt", "f-1", "F", "g/h"]) {
      k++;
      // 0..4 matching lines per file, with other lines between them for context.
      const hits = k % 5;
      const lines: string[] = [];
      for (let i = 0; i < hits; i++) lines.push(`before ${i}`, `match ${d}/${f} #${i}`, `after ${i}`);
      lines.push("tail");
      total += hits;
      await put(`${d}/${f}`, lines.join("\n") + "\n");
    }
  }
  // Long lines: rg's JSON carries them whole, the answer keeps the first 4 KiB.
  const multi = "é".repeat(2047) + "ü"; // 4096 bytes of two-byte characters
  await put(
    "long/a.txt",
    [
      "x".repeat(100_000) + " match far",
      multi + "match at the cut " + "y".repeat(5000),
      '\t"quoted" \\ match\t' + "q".repeat(9000) + " match",
      "\u0001ctrl match\r",
    ].join("\n") + "\n",
  );
  await put(
    "long/b.txt",
    Buffer.concat([Buffer.from("z".repeat(4090)), Buffer.from([0xff, 0xfe]), Buffer.from("match invalid\n")]),
  );
  // Names rg has to escape in JSON, and a binary file whose matches must not count.
  await put('odd/q"uote\\back\tslash.txt', "match odd\n");
  await put("odd/bin.dat", Buffer.concat([Buffer.from("match\n".repeat(50)), Buffer.from([0, 1])]));
  total += 6;
  roots = await SearchRoots.create([rootDir]);
});
afterAll(() => rm(base, { recursive: true, force: true }));

const key = (r: Awaited<ReturnType<typeof grep>>) =>
  r.matches.map((m) => `${m.path}:${m.line}:${m.column}:${m.submatches.map((s) => `${s.start}-${s.end}`).join(",")}`);

describe.runIf(hasRg)("ripgrep engine: parallel run, then walk order", () => {
  const agree = async (input: GrepInput) => {
    const a = await grep(roots, input, builtin);
    const b = await grep(roots, input, ripgrep);
    expect(key(b)).toEqual(key(a));
    expect(b.matches).toEqual(a.matches);
    expect(b.truncated).toBe(a.truncated);
    return b;
  };

  it("returns every match in walk order when under the cap", async () => {
    const r = await agree({ pattern: "match", maxMatches: 10_000 });
    expect(r.matches).toHaveLength(total);
    expect(r.truncated).toBe(false);
    // a/... before a-b/... before a.b/... (component order), not string order.
    const dirs = [...new Set(r.matches.map((m) => m.path.split("/")[0]))];
    expect(dirs.indexOf("a")).toBeLessThan(dirs.indexOf("a-b"));
    expect(dirs.indexOf("a-b")).toBeLessThan(dirs.indexOf("a.b"));
  });

  it("returns the first N matches in walk order for any cap, as the builtin engine does", async () => {
    // Small caps end in the sorted run; from about two thirds of the total the parallel run goes on.
    for (const maxMatches of [1, 2, 7, 25, 60, 84, 90, 100, total - 1, total, total + 1]) {
      const r = await agree({ pattern: "match", maxMatches });
      expect(r.matches).toHaveLength(Math.min(maxMatches, total));
      expect(r.truncated).toBe(maxMatches < total);
    }
  });

  it("keeps context lines right under and over the cap", async () => {
    for (const maxMatches of [3, 40, total - 1, total]) {
      await agree({ pattern: "match", maxMatches, contextLines: 2 });
    }
  });

  it("orders several paths as given, also when they overlap", async () => {
    await agree({ pattern: "match", paths: ["z", "a", "long/b.txt", "A"] });
    await agree({ pattern: "match", paths: ["z", "a", "A"], maxMatches: 13 });
    await agree({ pattern: "match", paths: ["a", "a/b", "a/f"], contextLines: 1 });
    await agree({ pattern: "match", paths: ["a/f", "a/f"] });
  });

  it("returns the same text and offsets for long lines, invalid UTF-8 and escapes", async () => {
    const r = await agree({ pattern: "match", paths: ["long"], contextLines: 1 });
    expect(r.matches.map((m) => m.line)).toEqual([1, 2, 3, 4, 1]);
    expect(Buffer.byteLength(r.matches[0].lineText)).toBeLessThanOrEqual(4096);
    expect(r.matches[0].submatches).toEqual([]);
    expect(r.matches[2].lineText.startsWith('\t"quoted" \\ match\t')).toBe(true);
    expect(r.matches[3].lineText).toBe("\u0001ctrl match");
  });
});

describe("rg --json lines read by hand", () => {
  const line = (type: string, data: object) => JSON.stringify({ type, data });
  const both = (json: string): [LineEvent | undefined, LineEvent | undefined] => {
    const buf = Buffer.from(`junk\n${json}\nmore`);
    const s = 5;
    return [parseLineEvent(buf, s, s + Buffer.byteLength(json)), parseLineEventJson(json)];
  };
  const same = (json: string) => {
    const [a, b] = both(json);
    expect(a).toBeDefined();
    const hex = (e: LineEvent) => ({ ...e, raw: Buffer.from(e.raw).toString("hex") });
    expect(hex(a!)).toEqual(hex(b!));
    return a!;
  };
  const data = (lines: object, submatches: object[], p: object = { text: "./p" }) => ({
    path: p,
    lines,
    line_number: 12,
    absolute_offset: 345,
    submatches,
  });

  it("agrees with JSON.parse on text, escapes, bytes and submatches", () => {
    const texts = [
      "plain line\n",
      "no newline at the end",
      "",
      "\n",
      '\t"tabs" and \\backslashes\\\n',
      "ctrl \u0001\u001f\b\f and crlf\r\n",
      "ends with a backslash \\",
      "ünïcödé ✓ 😀\n",
      'a "quote" at the end"',
    ];
    for (const text of texts) {
      const subs = [
        { match: { text: 'has "quotes" \\ and }' }, start: 1, end: 4 },
        { match: { bytes: "/w==" }, start: 5, end: 6 },
      ];
      expect(same(line("match", data({ text }, subs))).subs).toEqual([
        [1, 4],
        [5, 6],
      ]);
      same(line("context", data({ text }, [], { text: 'we"ird},"lines":{"text":"x' })));
    }
    const bytes = Buffer.from([0x61, 0xff, 0xfe, 0x0a]).toString("base64");
    expect(Buffer.from(same(line("match", data({ bytes }, [], { bytes: "/w==" }))).raw)).toEqual(
      Buffer.from([0x61, 0xff, 0xfe]),
    );
  });

  it("clips long lines the same way wherever the cut falls", () => {
    for (const len of [MAX_RAW_LINE_BYTES - 2, MAX_RAW_LINE_BYTES - 1, MAX_RAW_LINE_BYTES, MAX_RAW_LINE_BYTES + 1]) {
      for (const tail of ["\n", "\\\n", '"\n', "\t\t\n", "é\n", ""]) {
        const text = "x".repeat(len - 1) + tail + "rest".repeat(3);
        same(line("match", data({ text }, [{ match: { text: "x" }, start: 0, end: 1 }])));
        const short = "x".repeat(len) + tail;
        same(line("match", data({ text: short }, [])));
        same(line("match", data({ text: "\t".repeat(len) + tail }, [])));
        const b64 = Buffer.from("b".repeat(len) + tail).toString("base64");
        same(line("match", data({ bytes: b64 }, [])));
      }
    }
    const long = same(line("match", data({ text: "\\".repeat(100_000) + "\n" }, [])));
    expect(long.raw.length).toBe(MAX_RAW_LINE_BYTES);
  });

  it("leaves lines of another shape to JSON.parse", () => {
    const [a, b] = both(JSON.stringify({ type: "match", data: { line_number: 3, lines: { text: "x\n" } } }));
    expect(a).toBeUndefined();
    expect(b?.n).toBe(3);
  });
});
