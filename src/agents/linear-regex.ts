/**
 * A small linear-time regular expression engine for watch rules (RE2 syntax subset), because
 * JavaScript's RegExp backtracks: `(a|a)*b` on a long line of `a`s takes exponential time, and a
 * watch rule runs on every byte an agent prints. Patterns compile to a Thompson NFA that is run as
 * a Pike VM: time O(input x program), no backtracking, no backreferences or lookaround (refused
 * with invalid_argument, as RE2 does).
 *
 * Matching is streaming and line-oriented: `StreamMatcher` takes one code point at a time, so a line
 * split over any number of chunks matches as if it arrived whole. It reports the first position at
 * which some match ends (what an alert needs), with that match's start.
 *
 * Supported: literals, `.`, `[...]`/`[^...]` with ranges and `[:alpha:]`-style classes, `\d \w \s`
 * and their negations, `\t \n \r \f \v \xHH \x{H..}`, escaped punctuation, `( )`, `(?: )`, named
 * groups, `|`, `* + ?`, `{n} {n,} {n,m}` (lazy `?` suffixes are accepted and mean the same here),
 * `^ $` (line start and end), `\b \B`, and a leading `(?i)`.
 */
import { invalidArgument } from "../errors/gateway-error.js";

/** Bounds that keep every compiled rule small: memory and time per input char are O(program). */
export const MAX_PATTERN_LENGTH = 1000;
export const MAX_PROGRAM_SIZE = 5000;
const MAX_REPEAT = 1000;

type CharTest = (c: number) => boolean;

type Node =
  | { t: "char"; test: CharTest }
  | { t: "cat"; items: Node[] }
  | { t: "alt"; items: Node[] }
  | { t: "rep"; node: Node; min: number; max: number } // max -1: unbounded
  | { t: "assert"; kind: Assertion }
  | { t: "empty" };

type Assertion = "bol" | "eol" | "word" | "notword";

type Inst =
  | { op: "char"; test: CharTest; next: number }
  | { op: "split"; x: number; y: number }
  | { op: "jmp"; x: number }
  | { op: "assert"; kind: Assertion; next: number }
  | { op: "match" };

export interface Program {
  insts: Inst[];
  start: number;
}

const isDigit: CharTest = (c) => c >= 48 && c <= 57;
const isWord: CharTest = (c) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isSpace: CharTest = (c) => c === 32 || (c >= 9 && c <= 13);
const not =
  (f: CharTest): CharTest =>
  (c) =>
    !f(c);

const POSIX: Record<string, CharTest> = {
  alnum: (c) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122),
  alpha: (c) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122),
  digit: isDigit,
  lower: (c) => c >= 97 && c <= 122,
  upper: (c) => c >= 65 && c <= 90,
  space: isSpace,
  punct: (c) => (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126),
  xdigit: (c) => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102),
  word: isWord,
};

function fold(c: number): [number, number] {
  const s = String.fromCodePoint(c);
  return [s.toLowerCase().codePointAt(0)!, s.toUpperCase().codePointAt(0)!];
}

function caseless(test: CharTest): CharTest {
  return (c) => {
    if (test(c)) return true;
    // ASCII by arithmetic: this runs for every char of output.
    if (c < 128) return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ? test(c ^ 32) : false;
    const [lo, up] = fold(c);
    return test(lo) || test(up);
  };
}

class Parser {
  private i = 0;
  private readonly ignoreCase: boolean;
  private readonly src: string;

  constructor(src: string, ignoreCase: boolean) {
    if (src.startsWith("(?i)")) {
      src = src.slice(4);
      ignoreCase = true;
    }
    this.src = src;
    this.ignoreCase = ignoreCase;
  }

  parse(): Node {
    const n = this.alt();
    if (this.i < this.src.length) this.fail(this.src[this.i] === ")" ? "unmatched )" : "unexpected character");
    return n;
  }

  private fail(why: string): never {
    throw invalidArgument(`watch rule pattern: ${why} at position ${this.i}`, "watch_rules.pattern");
  }

  private peek(): string | undefined {
    return this.src[this.i];
  }

  private alt(): Node {
    const items = [this.cat()];
    while (this.peek() === "|") {
      this.i++;
      items.push(this.cat());
    }
    return items.length === 1 ? items[0]! : { t: "alt", items };
  }

  private cat(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.peek() !== "|" && this.peek() !== ")") items.push(this.repeat());
    return items.length === 1 ? items[0]! : items.length === 0 ? { t: "empty" } : { t: "cat", items };
  }

  private repeat(): Node {
    let node = this.atom();
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === "*") [min, max] = [0, -1];
      else if (c === "+") [min, max] = [1, -1];
      else if (c === "?") [min, max] = [0, 1];
      else if (c === "{" && /^\{\d+(,\d*)?\}/.test(this.src.slice(this.i))) {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i))!;
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === "" ? -1 : Number(m[3]);
        if (min > MAX_REPEAT || max > MAX_REPEAT) this.fail(`repeat count above ${MAX_REPEAT}`);
        if (max !== -1 && max < min) this.fail("bad repeat range");
        this.i += m[0].length - 1;
      } else return node;
      this.i++;
      if (this.peek() === "?") this.i++; // lazy: same match set
      if (node.t === "assert" || node.t === "empty") this.fail("nothing to repeat");
      node = { t: "rep", node, min, max };
    }
  }

  private atom(): Node {
    const c = this.src[this.i++]!;
    switch (c) {
      case "(":
        return this.group();
      case "[":
        return this.charTest(this.cls());
      case ".":
        return { t: "char", test: (x) => x !== 10 };
      case "^":
        return { t: "assert", kind: "bol" };
      case "$":
        return { t: "assert", kind: "eol" };
      case "\\":
        return this.escape();
      case "*":
      case "+":
      case "?":
        return this.fail("nothing to repeat");
      default:
        return this.literal(c.codePointAt(0)!, c.length);
    }
  }

  private literal(cp: number, units: number): Node {
    // Surrogate pairs: consume the second half too.
    if (cp > 0xffff && units === 1) this.i++;
    return this.charTest((x) => x === cp);
  }

  private charTest(test: CharTest): Node {
    return { t: "char", test: this.ignoreCase ? caseless(test) : test };
  }

  private group(): Node {
    if (this.src.startsWith("?:", this.i)) this.i += 2;
    else if (/^\?P?</.test(this.src.slice(this.i)) && !/^\?<[=!]/.test(this.src.slice(this.i))) {
      const close = this.src.indexOf(">", this.i);
      if (close < 0) this.fail("unterminated group name");
      this.i = close + 1;
    } else if (this.peek() === "?") {
      const what = /^\?(<?[=!])/.test(this.src.slice(this.i))
        ? "lookaround is not supported (patterns use linear-time RE2 syntax)"
        : "unsupported group flags";
      this.fail(what);
    }
    const inner = this.alt();
    if (this.peek() !== ")") this.fail("missing )");
    this.i++;
    return inner;
  }

  private escape(): Node {
    const c = this.src[this.i++];
    if (c === undefined) this.fail("trailing backslash");
    if (c >= "1" && c <= "9") this.fail("backreferences are not supported (patterns use linear-time RE2 syntax)");
    if (c === "b") return { t: "assert", kind: "word" };
    if (c === "B") return { t: "assert", kind: "notword" };
    if (c === "A") return { t: "assert", kind: "bol" };
    if (c === "z") return { t: "assert", kind: "eol" };
    const test = this.classEscape(c);
    if (test) return this.charTest(test);
    const cp = this.simpleEscape(c);
    return this.charTest((x) => x === cp);
  }

  private classEscape(c: string): CharTest | undefined {
    switch (c) {
      case "d":
        return isDigit;
      case "D":
        return not(isDigit);
      case "w":
        return isWord;
      case "W":
        return not(isWord);
      case "s":
        return isSpace;
      case "S":
        return not(isSpace);
      default:
        return undefined;
    }
  }

  /** An escape that stands for one code point. */
  private simpleEscape(c: string): number {
    const named: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13, a: 7, "0": 0 };
    if (c in named) return named[c]!;
    if (c === "x") {
      const m = /^(?:\{([0-9a-fA-F]{1,6})\}|([0-9a-fA-F]{2}))/.exec(this.src.slice(this.i));
      if (!m) this.fail("bad \\x escape");
      this.i += m[0].length;
      return parseInt(m[1] ?? m[2]!, 16);
    }
    if (/[A-Za-z0-9]/.test(c)) this.fail(`unsupported escape \\${c}`);
    return c.codePointAt(0)!;
  }

  private cls(): CharTest {
    const negate = this.peek() === "^";
    if (negate) this.i++;
    const tests: CharTest[] = [];
    let first = true;
    for (;;) {
      const c = this.src[this.i];
      if (c === undefined) this.fail("missing ]");
      if (c === "]" && !first) {
        this.i++;
        break;
      }
      first = false;
      if (c === "[" && this.src[this.i + 1] === ":") {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.i));
        const t = m && POSIX[m[2]!];
        if (!m || !t) this.fail("unknown [:class:]");
        this.i += m[0].length;
        tests.push(m[1] ? not(t) : t);
        continue;
      }
      const lo = this.classChar();
      if (typeof lo === "function") {
        tests.push(lo);
        continue;
      }
      if (this.peek() === "-" && this.src[this.i + 1] !== "]" && this.src[this.i + 1] !== undefined) {
        this.i++;
        const hi = this.classChar();
        if (typeof hi === "function" || hi < lo) this.fail("bad class range");
        tests.push((x) => x >= lo && x <= hi);
      } else tests.push((x) => x === lo);
    }
    const any: CharTest = (x) => tests.some((t) => t(x));
    return negate ? not(any) : any;
  }

  private classChar(): number | CharTest {
    const c = this.src[this.i++]!;
    if (c !== "\\") {
      const cp = c.codePointAt(0)!;
      if (cp > 0xffff) this.i++;
      return cp;
    }
    const e = this.src[this.i++];
    if (e === undefined) this.fail("trailing backslash");
    return this.classEscape(e) ?? this.simpleEscape(e);
  }
}

/** Compiles a watch-rule pattern; throws GatewayError invalid_argument with the reason. */
export function compileLinear(pattern: string, ignoreCase = false): Program {
  if (pattern.length === 0) throw invalidArgument("watch rule pattern is empty", "watch_rules.pattern");
  if (pattern.length > MAX_PATTERN_LENGTH)
    throw invalidArgument(`watch rule pattern is longer than ${MAX_PATTERN_LENGTH} characters`, "watch_rules.pattern");
  const ast = new Parser(pattern, ignoreCase).parse();
  const insts: Inst[] = [];
  const emit = (i: Inst): number => {
    if (insts.length >= MAX_PROGRAM_SIZE)
      throw invalidArgument(
        `watch rule pattern is too large once repeats are expanded (over ${MAX_PROGRAM_SIZE} steps)`,
        "watch_rules.pattern",
      );
    insts.push(i);
    return insts.length - 1;
  };
  // Thompson construction: each node becomes a fragment whose dangling exits ("holes") are patched
  // to whatever follows it.
  type Frag = { start: number; holes: ((to: number) => void)[] };
  const frag = (n: Node): Frag => {
    switch (n.t) {
      case "empty": {
        const j = emit({ op: "jmp", x: -1 });
        return { start: j, holes: [(to) => ((insts[j] as { x: number }).x = to)] };
      }
      case "char": {
        const k = emit({ op: "char", test: n.test, next: -1 });
        return { start: k, holes: [(to) => ((insts[k] as { next: number }).next = to)] };
      }
      case "assert": {
        const k = emit({ op: "assert", kind: n.kind, next: -1 });
        return { start: k, holes: [(to) => ((insts[k] as { next: number }).next = to)] };
      }
      case "cat": {
        const parts = n.items.map(frag);
        for (let i = 0; i + 1 < parts.length; i++) for (const h of parts[i]!.holes) h(parts[i + 1]!.start);
        return { start: parts[0]!.start, holes: parts.at(-1)!.holes };
      }
      case "alt": {
        const parts = n.items.map(frag);
        // A chain of splits, earlier alternatives first.
        let start = parts.at(-1)!.start;
        for (let i = parts.length - 2; i >= 0; i--) start = emit({ op: "split", x: parts[i]!.start, y: start });
        return { start, holes: parts.flatMap((p) => p.holes) };
      }
      case "rep": {
        const items: Node[] = [];
        for (let i = 0; i < n.min; i++) items.push(n.node);
        if (n.max === -1) {
          const body = frag(n.node);
          const s = emit({ op: "split", x: body.start, y: -1 });
          for (const h of body.holes) h(s);
          const star: Frag = { start: s, holes: [(to) => ((insts[s] as { y: number }).y = to)] };
          if (items.length === 0) return star;
          // The mandatory copies, then the star.
          const head = frag(items.length === 1 ? items[0]! : { t: "cat", items });
          for (const h of head.holes) h(star.start);
          return { start: head.start, holes: star.holes };
        }
        // min copies, then (max - min) nested optionals: x{2,4} = xx(x(x)?)?
        let tail: Frag | undefined;
        for (let i = n.max - n.min; i > 0; i--) {
          const body = frag(n.node);
          if (tail) for (const h of body.holes) h(tail.start);
          const s = emit({ op: "split", x: body.start, y: -1 });
          const holes = [(to: number) => ((insts[s] as { y: number }).y = to), ...(tail ? tail.holes : body.holes)];
          tail = { start: s, holes };
        }
        if (items.length === 0) return tail ?? frag({ t: "empty" });
        const head = frag(items.length === 1 ? items[0]! : { t: "cat", items });
        if (!tail) return head;
        for (const h of head.holes) h(tail.start);
        return { start: head.start, holes: tail.holes };
      }
    }
  };
  const f = frag(ast);
  const m = emit({ op: "match" });
  for (const h of f.holes) h(m);
  return { insts, start: f.start };
}

/** `next` of a position whose following char has not arrived yet. */
const UNKNOWN = -2;

/** Where a match began, in the caller's units (char index in the line and byte offset in the output). */
export interface MatchStart {
  charIndex: number;
  byteOffset: number;
}

export interface StreamMatch {
  start: MatchStart;
  /** Char index just after the match. */
  endChar: number;
}

type Thread = { pc: number; start: MatchStart };
/** Shared by every matcher with no live thread (never mutated): most chars start nothing. */
const NO_THREADS: Thread[] = [];

/** What the start state reaches in one assertion context: the first char tests, or a match. */
interface StartClosure {
  pcs: number[];
  match: boolean;
}

/**
 * Runs a program over one line at a time, one code point per `feed`. Matches are leftmost-first,
 * as in RE2: once one is found it is extended while higher-priority threads (a greedy `+`) can
 * still go on, and reported when they stop, at the end of the line, or at `probe` (the end of a
 * chunk: an alert must not wait for output that may never come). Then quiet until `reset`.
 *
 * Most chars of most output start no match: with no thread alive, the start state's closure comes
 * from a cache (it depends only on the assertion context), so such a char costs a few tests.
 */
export class StreamMatcher {
  private readonly prog: Program;
  /** Threads waiting to consume the next char, in priority order. */
  private threads: Thread[] = [];
  private prev = -1; // previous code point in the line, -1 at line start
  private done = false;
  private pending: StreamMatch | undefined;
  private readonly seen: Int32Array;
  private generation = 0;
  private readonly startCache: (StartClosure | undefined)[] = [];
  private readonly stack: number[] = [];

  /**
   * ASCII chars that can begin a match in some context (1), or undefined when the start state can
   * match without consuming anything. With no thread alive, other ASCII chars are skipped at once.
   */
  private readonly first: Uint8Array | undefined;

  constructor(prog: Program) {
    this.prog = prog;
    this.seen = new Int32Array(prog.insts.length);
    this.first = this.firstChars();
  }

  private firstChars(): Uint8Array | undefined {
    const table = new Uint8Array(128);
    const contexts: [number, number][] = [];
    for (const prev of [-1, 0x20, 0x61]) for (const next of [-1, UNKNOWN, 0x20, 0x61]) contexts.push([prev, next]);
    for (const [prev, next] of contexts) {
      this.prev = prev;
      const sc = this.startClosure(next);
      if (sc.match) return undefined;
      for (const pc of sc.pcs) {
        const test = (this.prog.insts[pc] as { test: CharTest }).test;
        for (let c = 0; c < 128; c++) if (test(c)) table[c] = 1;
      }
    }
    this.prev = -1;
    return table;
  }

  reset(): void {
    this.threads = [];
    this.prev = -1;
    this.done = false;
    this.pending = undefined;
  }

  feed(cp: number, charIndex: number, byteOffset: number): StreamMatch | undefined {
    if (this.done) return undefined;
    if (cp < 128 && this.threads.length === 0 && this.pending === undefined && this.first?.[cp] === 0) {
      this.prev = cp;
      return undefined;
    }
    let next: Thread[];
    if (this.threads.length === 0 && !this.pending) {
      const sc = this.startClosure(cp);
      if (sc.match) this.pending = { start: { charIndex, byteOffset }, endChar: charIndex };
      next = NO_THREADS;
      for (let i = 0; i < sc.pcs.length; i++) {
        const inst = this.prog.insts[sc.pcs[i]!] as { op: "char"; test: CharTest; next: number };
        if (!inst.test(cp)) continue;
        if (next === NO_THREADS) next = [];
        next.push({ pc: inst.next, start: next[0]?.start ?? { charIndex, byteOffset } });
      }
    } else {
      const { ready, match } = this.closure({ charIndex, byteOffset }, cp);
      if (match) this.pending = { start: match, endChar: charIndex };
      next = [];
      for (const t of ready) {
        const inst = this.prog.insts[t.pc] as { op: "char"; test: CharTest; next: number };
        if (inst.test(cp)) next.push({ pc: inst.next, start: t.start });
      }
    }
    this.threads = next;
    this.prev = cp;
    return this.pending && next.length === 0 ? this.finish() : undefined;
  }

  /** The end of the line: `$` can match now. */
  endLine(charIndex: number, byteOffset: number): StreamMatch | undefined {
    return this.settle(charIndex, byteOffset, -1);
  }

  /**
   * The end of a chunk: reports a match found so far (a prompt with no newline yet). Assertions
   * that need the next char (`$`, `\b`, `\B`) count as not holding.
   */
  probe(charIndex: number, byteOffset: number): StreamMatch | undefined {
    return this.settle(charIndex, byteOffset, UNKNOWN);
  }

  private settle(charIndex: number, byteOffset: number, next: number): StreamMatch | undefined {
    if (this.done) return undefined;
    const { match } = this.closure({ charIndex, byteOffset }, next);
    if (match) this.pending = { start: match, endChar: charIndex };
    return this.pending ? this.finish() : undefined;
  }

  private finish(): StreamMatch {
    const m = this.pending!;
    this.done = true;
    this.threads = [];
    this.pending = undefined;
    return m;
  }

  private startClosure(next: number): StartClosure {
    const prev = this.prev;
    const key =
      (prev === -1 ? 1 : 0) |
      (prev >= 0 && isWord(prev) ? 2 : 0) |
      (next === -1 ? 4 : 0) |
      (next === UNKNOWN ? 8 : 0) |
      (next >= 0 && isWord(next) ? 16 : 0);
    let sc = this.startCache[key];
    if (!sc) {
      const saved = this.threads;
      this.threads = [];
      const { ready, match } = this.closure({ charIndex: 0, byteOffset: 0 }, next);
      this.threads = saved;
      sc = { pcs: ready.map((t) => t.pc), match: match !== undefined };
      this.startCache[key] = sc;
    }
    return sc;
  }

  /**
   * Follows jumps, splits and assertions from the waiting threads, plus a new thread starting here
   * (unanchored search) unless a match is already pending, knowing the chars on both sides of this
   * position (`next` -1: end of line). The earliest-started thread reaches each instruction first
   * and keeps it; a thread that reaches `match` cuts every lower-priority one.
   */
  private closure(here: MatchStart, next: number): { ready: Thread[]; match?: MatchStart } {
    const c: ClosureState = {
      gen: ++this.generation,
      ready: [],
      match: undefined,
      next,
      known: next !== UNKNOWN,
      atWordBoundary: (this.prev >= 0 && isWord(this.prev)) !== (next >= 0 && isWord(next)),
    };
    let matched = false;
    for (const t of this.threads) if ((matched = this.visit(c, t.pc, t.start))) break;
    if (!matched && !this.pending) this.visit(c, this.prog.start, here);
    return { ready: c.ready, match: c.match };
  }

  /** One thread's part of `closure` (a method, not a closure: this runs per char). */
  private visit(c: ClosureState, pc0: number, start: MatchStart): boolean {
    const stack = this.stack;
    stack.push(pc0);
    while (stack.length) {
      const pc = stack.pop()!;
      if (this.seen[pc] === c.gen) continue;
      this.seen[pc] = c.gen;
      const inst = this.prog.insts[pc]!;
      switch (inst.op) {
        case "char":
          c.ready.push({ pc, start });
          break;
        case "match":
          c.match = start;
          stack.length = 0;
          return true;
        case "jmp":
          stack.push(inst.x);
          break;
        case "split":
          stack.push(inst.y, inst.x); // x first: higher priority
          break;
        case "assert": {
          const ok =
            inst.kind === "bol"
              ? this.prev === -1
              : inst.kind === "eol"
                ? c.next === -1
                : inst.kind === "word"
                  ? c.known && c.atWordBoundary
                  : c.known && !c.atWordBoundary;
          if (ok) stack.push(inst.next);
          break;
        }
      }
    }
    return false;
  }
}

interface ClosureState {
  gen: number;
  ready: Thread[];
  match: MatchStart | undefined;
  next: number;
  known: boolean;
  atWordBoundary: boolean;
}

/** Whether `pattern` matches somewhere in `line` (tests and validation helpers). */
export function matchLine(prog: Program, line: string): boolean {
  const m = new StreamMatcher(prog);
  let i = 0;
  for (const ch of line) {
    if (m.feed(ch.codePointAt(0)!, i, i)) return true;
    i++;
  }
  return m.endLine(i, i) !== undefined;
}
