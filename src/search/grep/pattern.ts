/**
 * The grep pattern, validated once and compiled for both engines. Only linear-time regexes:
 * RE2 syntax through re2js for the builtin engine, ripgrep's default engine (never PCRE2) for rg.
 * A pattern is always data: rg gets it after `-e`, so `--pre=cat` is text to find.
 */
import { RE2JS } from "re2js";
import { GatewayError } from "../../errors/gateway-error.js";
import type { GrepCaseMode } from "./types.js";

export const MAX_PATTERN_LENGTH = 1000;

export interface CompiledPattern {
  /** Flags for rg (the pattern itself goes after -e). */
  rgFlags: string[];
  /** Finds matches in one line's bytes; for whole-word, capture group 1 is the match. */
  re: RE2JS;
  /** Same expression with ^/$ at line breaks, to skip files with no match in one pass. */
  prefilter?: RE2JS;
  wholeWord: boolean;
  source: string;
}

// ripgrep 13 -w: the match must have a non-word character (or the line's edge) on both sides.
const NON_WORD = "[^\\pL\\pM\\p{Nd}\\p{Pc}]";

export function compilePattern(
  pattern: string,
  opts: { literal?: boolean; caseMode?: GrepCaseMode; wholeWord?: boolean },
): CompiledPattern {
  if (typeof pattern !== "string" || pattern.length === 0) {
    throw new GatewayError("invalid_argument", "pattern is empty", { param: "pattern" });
  }
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new GatewayError("invalid_argument", `pattern is longer than ${MAX_PATTERN_LENGTH} characters`, {
      param: "pattern",
    });
  }
  if (/[\0\n\r]/.test(pattern)) {
    throw new GatewayError("invalid_argument", "pattern may not contain NUL or line breaks (grep is per line)", {
      param: "pattern",
    });
  }
  const body = opts.literal ? RE2JS.quote(pattern) : pattern;
  const insensitive =
    opts.caseMode === "insensitive" || (opts.caseMode === "smart" && !hasUppercaseLiteral(pattern, !!opts.literal));
  const flags = insensitive ? RE2JS.CASE_INSENSITIVE : 0;
  const wholeWord = !!opts.wholeWord;
  const source = wholeWord ? `(?:^|${NON_WORD})(${body})(?:$|${NON_WORD})` : body;
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, flags);
  } catch (err) {
    throw new GatewayError("invalid_argument", `invalid regular expression: ${(err as Error).message}`, {
      param: "pattern",
      code: "invalid_pattern",
    });
  }
  // \A and \z mean the line's edges per line but the file's edges in one pass: no prefilter then.
  const prefilter = /\\[Az]/.test(body) ? undefined : RE2JS.compile(source, flags | RE2JS.MULTILINE);
  // Case is decided here (not with --smart-case) so both engines agree on it.
  const rgFlags = [insensitive ? "--ignore-case" : "--case-sensitive"];
  if (opts.literal) rgFlags.push("--fixed-strings");
  if (wholeWord) rgFlags.push("--word-regexp");
  return { rgFlags, re, prefilter, wholeWord, source };
}

/** Smart case: any upper-case letter that is a literal (not part of an escape like \W or \p{Lu}). */
function hasUppercaseLiteral(pattern: string, literal: boolean): boolean {
  const text = literal ? pattern : pattern.replace(/\\[pP]\{[^}]*\}|\\[pP]\w|\\./g, "");
  return /\p{Lu}/u.test(text);
}
