// Watch rules: the linear-time engine (RE2 syntax subset; backreferences and lookaround refused),
// and the streaming matcher: escape sequences removed, lines split across chunks, matched text and
// offsets.
import { describe, expect, it } from "vitest";
import { compileLinear, matchLine } from "../../src/agents/linear-regex.js";
import { validateWatchRules, WatchRuleMatcher, type WatchRule } from "../../src/agents/watch-rules.js";
import { GatewayError } from "../../src/errors/gateway-error.js";

const matches = (p: string, s: string, ignoreCase = false) => matchLine(compileLinear(p, ignoreCase), s);

describe("linear-time patterns", () => {
  it.each([
    ["rm -rf", "sudo rm -rf /", true],
    ["^abc$", "abc", true],
    ["^abc$", "xabc", false],
    ["a{2,3}b", "caab", true],
    ["a{2,3}b", "ab", false],
    ["\\bfoo\\b", "a foo b", true],
    ["\\bfoo\\b", "afoo", false],
    ["[^0-9]+x", "12x", false],
    ["[[:digit:]]{3}", "ab123", true],
    ["colou?r", "color", true],
    ["x(?:ab)+y", "xababy", true],
    ["(?P<n>ab)c|zz", "abc", true],
    ["\\d+\\.\\d+", "v1.25", true],
    ["[a-c-]+z", "-bz", true],
    ["a.c", "a\u00e9c", true],
  ])("%s on %j: %s", (p, s, want) => {
    expect(matches(p, s)).toBe(want);
    expect(new RegExp(p.replace("(?P<", "(?<").replace("[[:digit:]]", "\\d")).test(s)).toBe(want);
  });

  it("ignores case when asked, also with (?i)", () => {
    expect(matches("PASSWORD", "enter password:", true)).toBe(true);
    expect(matches("(?i)PASSWORD", "enter password:")).toBe(true);
    expect(matches("PASSWORD", "enter password:")).toBe(false);
  });

  it("patterns that make a backtracking engine take exponential time run in linear time", () => {
    const line = "a".repeat(20_000) + "!";
    for (const p of ["(a|a)*b", "(a*)*b", "(a+)+b", "(a|aa)+$x"]) {
      const t0 = performance.now();
      expect(matches(p, line)).toBe(false);
      expect(performance.now() - t0, p).toBeLessThan(2000);
    }
  });

  it.each([
    ["(a)\\1", /backreferences/],
    ["(?=a)b", /lookaround/],
    ["(?<!a)b", /lookaround/],
    ["[abc", /missing \]/],
    ["(ab", /missing \)/],
    ["ab)", /unmatched \)/],
    ["*a", /nothing to repeat/],
    ["a{2000}", /repeat count/],
    ["\\p{L}", /unsupported escape/],
    ["(?:x{1000}){1000}", /too large/],
  ])("refuses %s", (p, why) => {
    let err: unknown;
    try {
      compileLinear(p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).kind).toBe("invalid_argument");
    expect((err as GatewayError).message).toMatch(why);
  });

  it("validation refuses duplicate names and patterns that match every line", () => {
    const rule = (name: string, pattern: string): WatchRule => ({ name, pattern, ignoreCase: false, action: "notify" });
    expect(() => validateWatchRules([rule("a", "x"), rule("a", "y")])).toThrow(/used twice/);
    expect(() => validateWatchRules([rule("a", "x*")])).toThrow(/every line/);
    expect(() => validateWatchRules([rule("bad name", "x")])).toThrow(/name/);
    expect(() => validateWatchRules([rule("ok", "x+")])).not.toThrow();
  });
});

describe("the streaming matcher", () => {
  const rules: WatchRule[] = [
    { name: "rm-rf", pattern: "rm -rf /", ignoreCase: false, action: "pause" },
    { name: "prompt", pattern: "^Proceed\\? \\[y/N\\]", ignoreCase: false, action: "notify" },
  ];
  const line = Buffer.from("ok\r\n\x1b[1;31mrm -r\x1b[0mf \x1b]0;title\x07/tmp\r\nProceed? [y/N] ");

  it("finds a match however the output is split into chunks, escape sequences removed", () => {
    for (const size of [1, 2, 3, 7, 13, line.length]) {
      const m = new WatchRuleMatcher(rules);
      const found = [];
      for (let at = 0; at < line.length; at += size) found.push(...m.feed(line.subarray(at, at + size), 1000 + at));
      expect(
        found.map((f) => [f.rule.name, f.text, f.offset]),
        `chunks of ${size}`,
      ).toEqual([
        ["rm-rf", "rm -rf /", 1000 + line.indexOf("rm -r")],
        // A prompt with no newline after it is reported at the end of the chunk that completes it.
        ["prompt", "Proceed? [y/N]", 1000 + line.indexOf("Proceed")],
      ]);
    }
  });

  it("fires once per line per rule, again on the next line; ^ and $ are line boundaries", () => {
    const m = new WatchRuleMatcher([{ name: "e", pattern: "err(or)?$", ignoreCase: true, action: "notify" }]);
    const out = m.feed(Buffer.from("ERROR error\nno err here\nerr\n"), 0);
    expect(out.map((o) => o.text)).toEqual(["error", "err"]);
  });

  it("decodes UTF-8 split across chunks", () => {
    const m = new WatchRuleMatcher([{ name: "u", pattern: "caf\u00e9 \u2603", ignoreCase: false, action: "notify" }]);
    const bytes = Buffer.from("le caf\u00e9 \u2603\n");
    const found = [];
    for (let i = 0; i < bytes.length; i++) found.push(...m.feed(bytes.subarray(i, i + 1), i));
    expect(found.map((f) => [f.text, f.offset])).toEqual([["caf\u00e9 \u2603", 3]]);
  });
});
