/**
 * Watch rules: patterns matched against an agent's output, line by line, with terminal escape
 * sequences removed. An alert for a human, not a security boundary: a program can always print
 * what a rule looks for in a way no rule foresees (the sandbox is the boundary).
 *
 * The matcher is streaming: bytes go through an escape-sequence stripper and a UTF-8 decoder one at a
 * time, and each code point goes to every rule's NFA (linear-regex.ts). Nothing is re-scanned, so a
 * line split across chunks matches exactly as if it came whole, and time stays linear in the
 * output. Memory per agent is bounded: the NFAs' thread lists and the last MATCH_TEXT_CHARS code
 * points of the current line (for matched_text).
 */
import { invalidArgument } from "../errors/gateway-error.js";
import { compileLinear, matchLine, StreamMatcher, type StreamMatch } from "./linear-regex.js";

export type WatchRuleAction = "pause" | "notify" | "kill";

export interface WatchRule {
  name: string;
  pattern: string;
  ignoreCase: boolean;
  action: WatchRuleAction;
}

export interface WatchMatch {
  rule: WatchRule;
  /** Absolute output offset of the match's first byte. */
  offset: number;
  /** The matched text (escape sequences removed), at most 1 KiB. */
  text: string;
}

export const MAX_WATCH_RULES = 32;
const MATCH_TEXT_CHARS = 1024;
const MATCH_TEXT_BYTES = 1024;

/** Checks names and patterns; throws GatewayError invalid_argument. */
export function validateWatchRules(rules: WatchRule[]): void {
  if (rules.length > MAX_WATCH_RULES) throw invalidArgument(`at most ${MAX_WATCH_RULES} watch rules`, "watch_rules");
  const names = new Set<string>();
  for (const r of rules) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(r.name))
      throw invalidArgument(
        `watch rule name ${JSON.stringify(r.name)} must be 1-64 letters, digits, '.', '_' or '-'`,
        "watch_rules.name",
      );
    if (names.has(r.name)) throw invalidArgument(`watch rule name ${r.name} is used twice`, "watch_rules.name");
    names.add(r.name);
    const prog = compileLinear(r.pattern, r.ignoreCase);
    if (matchLine(prog, ""))
      throw invalidArgument(
        `watch rule ${r.name}: the pattern matches an empty line, so it would match every line`,
        "watch_rules.pattern",
      );
  }
}

const enum Esc {
  None,
  Esc, // after ESC
  Csi, // ESC [ ... final byte
  Str, // OSC/DCS/SOS/PM/APC ... BEL or ESC \
  StrEsc, // ESC inside a string
  Inter, // ESC + intermediate bytes ... final byte
}

export class WatchRuleMatcher {
  private readonly rules: { rule: WatchRule; m: StreamMatcher }[];
  private esc = Esc.None;
  // UTF-8 decoding state
  private cp = 0;
  private need = 0;
  private cpOffset = 0;
  /** Code points of the current line, for matched_text (ring of the last MATCH_TEXT_CHARS). */
  private readonly recent = new Int32Array(MATCH_TEXT_CHARS);
  private charIndex = 0;

  constructor(rules: WatchRule[]) {
    this.rules = rules.map((rule) => ({ rule, m: new StreamMatcher(compileLinear(rule.pattern, rule.ignoreCase)) }));
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** Feeds a chunk that starts at absolute offset `offset`; returns the rules that matched in it. */
  feed(chunk: Buffer, offset: number): WatchMatch[] {
    const out: WatchMatch[] = [];
    if (this.rules.length === 0) return out;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      switch (this.esc) {
        case Esc.Esc:
          if (b === 0x5b) this.esc = Esc.Csi;
          else if (b === 0x5d || b === 0x50 || b === 0x58 || b === 0x5e || b === 0x5f) this.esc = Esc.Str;
          else if (b >= 0x20 && b <= 0x2f) this.esc = Esc.Inter;
          else this.esc = Esc.None;
          continue;
        case Esc.Csi:
        case Esc.Inter:
          if (b >= 0x40 && b <= 0x7e) this.esc = Esc.None;
          else if (this.esc === Esc.Inter && b >= 0x30) this.esc = Esc.None;
          continue;
        case Esc.Str:
          if (b === 0x07) this.esc = Esc.None;
          else if (b === 0x1b) this.esc = Esc.StrEsc;
          continue;
        case Esc.StrEsc:
          this.esc = b === 0x5c ? Esc.None : Esc.Str;
          continue;
      }
      if (b < 0x80) {
        this.need = 0;
        if (b === 0x1b) this.esc = Esc.Esc;
        else if (b === 0x0a) this.endLine(offset + i, out);
        else if (b >= 0x20 || b === 0x09) this.char(b, offset + i, out);
        // other control characters (\r, BEL, backspace ...) carry no text
        continue;
      }
      if (b >= 0xc0) {
        this.need = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : 1;
        this.cp = b & (0x3f >> this.need);
        this.cpOffset = offset + i;
      } else if (this.need > 0) {
        this.cp = (this.cp << 6) | (b & 0x3f);
        if (--this.need === 0) this.char(this.cp, this.cpOffset, out);
      }
      // a stray continuation byte is dropped
    }
    // A match that ends at the chunk's end (a prompt waiting for an answer) is reported now, not
    // when the next byte comes.
    for (const r of this.rules) {
      const m = r.m.probe(this.charIndex, offset + chunk.length);
      if (m) out.push(this.match(r.rule, m));
    }
    return out;
  }

  private char(cp: number, byteOffset: number, out: WatchMatch[]): void {
    this.recent[this.charIndex % MATCH_TEXT_CHARS] = cp;
    for (const r of this.rules) {
      const m = r.m.feed(cp, this.charIndex, byteOffset);
      if (m) out.push(this.match(r.rule, m));
    }
    this.charIndex++;
  }

  private endLine(byteOffset: number, out: WatchMatch[]): void {
    for (const r of this.rules) {
      const m = r.m.endLine(this.charIndex, byteOffset);
      if (m) out.push(this.match(r.rule, m));
      r.m.reset();
    }
    this.charIndex = 0;
  }

  private match(rule: WatchRule, m: StreamMatch): WatchMatch {
    const { start, endChar: end } = m;
    // (Only the last MATCH_TEXT_CHARS chars of the line are still in `recent`.)
    const from = Math.max(start.charIndex, end - MATCH_TEXT_CHARS, this.charIndex + 1 - MATCH_TEXT_CHARS);
    let text = "";
    for (let i = from; i < end; i++) text += String.fromCodePoint(this.recent[i % MATCH_TEXT_CHARS]!);
    while (Buffer.byteLength(text) > MATCH_TEXT_BYTES) text = text.slice(0, -1);
    return { rule, offset: start.byteOffset, text };
  }
}
