/**
 * Merges a terminal's output chunks while the program floods, so the output log, the watch rules
 * and every subscriber handle a few large chunks instead of thousands of small ones.
 *
 * Why: a PTY hands over whatever the program has written so far, and during a flood that is a
 * few hundred bytes per read (p50 624 B for `base64` on this machine), so each chunk's fixed costs
 * (a log write, an RPC frame per client, a wake-up) dominated: bench/agents measured Attach at about
 * half of a direct PTY read. Merging everything that arrives within `delayMs` removes that.
 *
 * Why not always: interactive output (an echoed keystroke, a prompt) must go out at once. So chunks
 * pass straight through until the output rate crosses `floodBytes` per `windowMs`; only then are they
 * held, for at most `delayMs` or until `maxBytes` are waiting. The mode is re-decided every window,
 * so a quiet program is back to pass-through within two windows.
 */

export interface CoalescerOptions {
  /** Bytes within one window that count as a flood. */
  floodBytes: number;
  windowMs: number;
  /** Longest a chunk waits while flooding. */
  delayMs: number;
  /** Waiting bytes that are delivered at once. */
  maxBytes: number;
  /** Milliseconds on a monotonic clock (tests pass their own). */
  now?: () => number;
}

export const DEFAULT_COALESCER: CoalescerOptions = {
  // 16 KB in 10 ms is 1.6 MB/s: far above typing or a chatty program, well below a flood (10+ MB/s).
  floodBytes: 16 * 1024,
  windowMs: 10,
  delayMs: 2,
  maxBytes: 64 * 1024,
};

export class OutputCoalescer {
  private readonly deliver: (chunk: Buffer) => void;
  private readonly o: Required<CoalescerOptions>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private windowStart = Number.NEGATIVE_INFINITY;
  private windowBytes = 0;
  private flooding = false;

  constructor(deliver: (chunk: Buffer) => void, opts: Partial<CoalescerOptions> = {}) {
    this.deliver = deliver;
    this.o = { ...DEFAULT_COALESCER, now: () => performance.now(), ...opts };
  }

  push(chunk: Buffer): void {
    const now = this.o.now();
    if (now - this.windowStart >= this.o.windowMs) {
      // A window that ended long ago says nothing about the current rate.
      const recent = now - this.windowStart < 2 * this.o.windowMs;
      this.flooding = recent && this.windowBytes >= this.o.floodBytes;
      this.windowStart = now;
      this.windowBytes = 0;
    }
    this.windowBytes += chunk.length;
    if (!this.flooding) {
      // The chunk that crosses the threshold still goes at once; the ones after it wait.
      this.flooding = this.windowBytes >= this.o.floodBytes;
      this.flush();
      this.deliver(chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.o.maxBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.o.delayMs);
  }

  /** Delivers what is waiting (also before an exit is recorded). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pendingBytes === 0) return;
    const merged = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.deliver(merged);
  }
}
