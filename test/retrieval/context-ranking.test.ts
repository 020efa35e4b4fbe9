// The pure parts of retrieval: which identifiers a question names, reciprocal-rank fusion and range
// merging, and the prompt's citation blocks.
import { describe, expect, it } from "vitest";
import { fuse } from "../../src/retrieval/context-retriever.js";
import { buildContextPrompt, CONTEXT_INSTRUCTIONS } from "../../src/retrieval/context-prompt.js";
import { alternationOf, queryTerms } from "../../src/retrieval/query-terms.js";
import type { Citation, RetrievalSource } from "../../src/retrieval/types.js";

describe("queryTerms", () => {
  it("takes identifiers for grep and longer plain words for symbol names", () => {
    const t = queryTerms(
      "Why does `parse` in config.loadConfig call read_env twice, and what is HTTP2Session or backoff?",
    );
    expect(t.identifiers).toEqual(["parse", "config", "loadConfig", "read_env", "HTTP2Session"]);
    expect(t.words).toEqual(["twice", "backoff"]);
  });

  it("never yields flags or regex syntax", () => {
    const t = queryTerms("--pre=/tmp/x.sh (a+)+$ .* [z-a] foo_bar");
    expect(t.identifiers).toEqual(["sh", "foo_bar"]);
    for (const id of t.identifiers) expect(id).toMatch(/^[A-Za-z_$][\w$]*$/);
    expect(alternationOf(["a$b", "c"])).toBe("a\\$b|c");
  });
});

const cand = (path: string, startLine: number, endLine: number, source: RetrievalSource, symbol = "") => ({
  rootDir: "/r",
  path,
  startLine,
  endLine,
  symbol,
  source,
});

describe("fuse", () => {
  it("ranks a range several sources found above one a single source ranked first", () => {
    const out = fuse([
      [cand("a.ts", 1, 10, "search"), cand("b.ts", 1, 10, "search")],
      [cand("b.ts", 3, 8, "symbols", "run")],
      [cand("b.ts", 5, 5, "grep")],
    ]);
    expect(out.map((r) => [r.path, r.startLine, r.endLine, [...r.bySource.keys()].sort()])).toEqual([
      ["b.ts", 1, 10, ["grep", "search", "symbols"]],
      ["a.ts", 1, 10, ["search"]],
    ]);
    expect(out[0]!.symbol).toBe("run");
    expect(out[0]!.score).toBeCloseTo(1 / 62 + 1 / 61 + 1 / 61);
  });

  it("counts a source once per range however often it hit", () => {
    const out = fuse([
      [cand("a.ts", 1, 20, "search")],
      [cand("b.ts", 1, 3, "grep"), cand("b.ts", 4, 6, "grep"), cand("b.ts", 7, 9, "grep")],
    ]);
    expect(out.map((r) => [r.path, r.startLine, r.endLine])).toEqual([
      ["a.ts", 1, 20],
      ["b.ts", 1, 9],
    ]);
    expect(out[1]!.score).toBeCloseTo(1 / 61);
  });

  it("keeps ranges of one file apart when the union would be too long, and never cites a line twice", () => {
    const out = fuse([[cand("a.ts", 1, 100, "search"), cand("a.ts", 90, 200, "search")]]);
    const ranges = out.map((r) => [r.startLine, r.endLine]).sort((a, b) => a[0]! - b[0]!);
    expect(ranges).toEqual([
      [1, 100],
      [101, 200],
    ]);
  });
});

describe("buildContextPrompt", () => {
  const citation = (text: string): Citation => ({
    label: "a.md:1-3",
    root: "r",
    path: "a.md",
    startLine: 1,
    endLine: 3,
    sources: ["search"],
    score: 1,
    symbol: "",
    text,
  });

  it("fences each excerpt longer than any backtick run inside it", () => {
    const p = buildContextPrompt([{ citation: citation("x\n````\ny"), language: "markdown" }]);
    expect(p.startsWith(CONTEXT_INSTRUCTIONS)).toBe(true);
    expect(p).toContain("[1] a.md:1-3\n`````markdown\nx\n````\ny\n`````");
  });

  it("says when nothing was found", () => {
    expect(buildContextPrompt([])).toContain("No excerpts were found");
  });
});
