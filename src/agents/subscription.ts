/**
 * One client watching an agent (Attach, WatchLogs, later SSE and WebSocket): an async iterator of
 * output chunks with absolute offsets, notices and, last, the exit status.
 *
 * Flow control without a queue of output: the agent's output log (ring + file) already holds every
 * byte, so a subscription is only a cursor into it. Each pull reads the next range from the log,
 * so however slow the client is, the server holds nothing extra for it beyond the log's own caps.
 * What a slow client costs is lag: once its live backlog (bytes written since it subscribed that it
 * has not taken) exceeds `maxLagBytes`, its overflow policy decides:
 * - skip: jump to the live end and send an OUTPUT_SKIPPED notice with the range (readable with
 *   ReadLogs while the log retains it);
 * - disconnect: end the stream with resource_exhausted (re-attach with a replay offset);
 * - pause-agent: stop reading the agent's terminal until this client is back under a quarter of
 *   the cap, so the program blocks on write instead of anything being dropped.
 * Replay (bytes before the subscription) never counts as lag.
 */
import { GatewayError } from "../errors/gateway-error.js";
import type { LogRange } from "./output-log.js";
import type {
  AgentEvent,
  AgentNotice,
  AgentRecord,
  AgentSignal,
  AttachMode,
  ExitStatus,
  LogStart,
  OverflowPolicy,
  TerminalSize,
} from "./types.js";
import type { SignalTarget } from "./pty-process.js";

/** What a subscription needs from the agent it watches (live or finished). */
export interface SubscriptionHost {
  readonly logStart: number;
  readonly logEnd: number;
  readLog(since: number, maxBytes: number): LogRange;
  readonly exit: ExitStatus | undefined;
  /** Steering, for read-write subscriptions (the host checks the agent is still running). */
  input(data: Buffer, from: Subscription): number;
  resize(size: TerminalSize, from: Subscription): TerminalSize;
  signal(signal: AgentSignal, target: SignalTarget | undefined, from: Subscription): void;
  /** pause-agent policy: hold (true) or release (false) the terminal reader for this subscription. */
  holdOutput(sub: Subscription, hold: boolean): void;
  detach(sub: Subscription): void;
}

export interface SubscribeOptions {
  from?: LogStart;
  mode?: AttachMode;
  overflow?: OverflowPolicy;
  /** Live backlog this client may have before its policy applies. */
  maxLagBytes?: number;
  /** Largest output chunk per event (keep it under the RPC message limit). */
  chunkBytes?: number;
}

export const DEFAULT_MAX_LAG_BYTES = 1024 * 1024;
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** Notices are small; a client that lets this many pile up is treated as fallen behind. */
const MAX_PENDING_NOTICES = 1000;

export class Subscription implements AsyncIterable<AgentEvent> {
  /** The agent as it was when the subscription opened. */
  readonly agent: AgentRecord;
  /** Offset of the first output byte this subscription delivers. */
  readonly startOffset: number;
  readonly mode: AttachMode;
  readonly overflow: OverflowPolicy;
  private readonly host: SubscriptionHost;
  private readonly maxLag: number;
  private readonly chunkBytes: number;
  /** Bytes from here on were written after the subscription opened. */
  private readonly liveFrom: number;
  private cursor: number;
  /** Notices wait until the output before them has been delivered (atEnd). */
  private notices: { atEnd: number; notice: AgentNotice }[] = [];
  private wake: (() => void) | undefined;
  private failure: GatewayError | undefined;
  private skipPending = false;
  private holding = false;
  private finished = false;

  constructor(host: SubscriptionHost, agent: AgentRecord, opts: SubscribeOptions = {}) {
    this.host = host;
    this.agent = agent;
    this.mode = opts.mode ?? "read-write";
    this.overflow = opts.overflow ?? "skip";
    this.maxLag = opts.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES;
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const end = host.logEnd;
    const from = opts.from;
    let cursor =
      from === undefined ? end : "offset" in from ? Math.min(from.offset, end) : Math.max(0, end - from.tail);
    if (cursor < host.logStart) {
      this.pushNotice(
        notice("replay_truncated", `output ${cursor}-${host.logStart} is no longer retained`, {
          offset: cursor,
          length: host.logStart - cursor,
        }),
        cursor,
      );
      cursor = host.logStart;
    }
    this.cursor = cursor;
    this.startOffset = cursor;
    this.liveFrom = end;
  }

  // --- steering (read-write only) ---

  write(data: Buffer): number {
    this.checkWritable("input");
    return this.host.input(data, this);
  }

  resize(size: TerminalSize): TerminalSize {
    this.checkWritable("resize");
    return this.host.resize(size, this);
  }

  signal(signal: AgentSignal, target?: SignalTarget): void {
    this.checkWritable("signal");
    this.host.signal(signal, target, this);
  }

  private checkWritable(what: string): void {
    if (this.mode !== "read-write")
      throw new GatewayError("permission_denied", `this attach is read-only: ${what} is not allowed`);
  }

  // --- called by the host ---

  /** New output was appended to the log. */
  outputAppended(): void {
    const lag = this.host.logEnd - Math.max(this.cursor, this.liveFrom);
    if (lag > this.maxLag && !this.failure) {
      if (this.overflow === "skip") this.skipPending = true;
      else if (this.overflow === "disconnect")
        this.failure = new GatewayError(
          "resource_exhausted",
          `this client fell more than ${this.maxLag} bytes behind the agent's output; re-attach with replay_offset ${this.cursor}`,
          { code: "client_too_slow" },
        );
      else if (!this.holding) {
        this.holding = true;
        this.host.holdOutput(this, true);
      }
    }
    this.poke();
  }

  /** A notice, delivered after the output written before it. */
  notify(n: AgentNotice): void {
    this.pushNotice(n, this.host.logEnd);
    this.poke();
  }

  /** The agent ended (the exit event follows the remaining output). */
  exited(): void {
    this.poke();
  }

  /** The agent is being deleted: no more output is delivered, only the exit. */
  abandonOutput(): void {
    this.cursor = this.host.logEnd;
    this.notices = [];
    this.poke();
  }

  // --- the consumer side ---

  /** Ends the subscription (detach); the iterator finishes. Idempotent. */
  close(): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
    this.host.detach(this);
    this.poke();
  }

  [Symbol.asyncIterator](): AsyncIterator<AgentEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        this.close();
        return { done: true, value: undefined };
      },
    };
  }

  async next(): Promise<IteratorResult<AgentEvent>> {
    for (;;) {
      if (this.finished) return { done: true, value: undefined };
      if (this.failure) {
        const err = this.failure;
        this.close();
        throw err;
      }
      const event = this.take();
      if (event) {
        if (event.type === "exit") this.close();
        return { done: false, value: event };
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private take(): AgentEvent | undefined {
    if (this.skipPending) {
      this.skipPending = false;
      const end = this.host.logEnd;
      if (end > this.cursor) {
        const from = this.cursor;
        this.cursor = end;
        // Notices about skipped output still go out, before the skip notice.
        for (const n of this.notices) n.atEnd = Math.min(n.atEnd, end);
        this.pushNotice(
          notice("output_skipped", `this client fell behind: output ${from}-${end} was not sent`, {
            offset: from,
            length: end - from,
          }),
          end,
        );
      }
    }
    if (this.cursor < this.host.logStart) {
      // The log's size cap dropped bytes this client had not read yet.
      const from = this.cursor;
      this.cursor = this.host.logStart;
      this.pushNotice(
        notice("output_skipped", `output ${from}-${this.cursor} was dropped by the log's size cap before it was sent`, {
          offset: from,
          length: this.cursor - from,
        }),
        this.cursor,
      );
    }
    const first = this.notices[0];
    if (first && first.atEnd <= this.cursor) {
      this.notices.shift();
      return { type: "notice", notice: first.notice };
    }
    if (this.cursor < this.host.logEnd) {
      const replaying = this.cursor < this.liveFrom;
      const max = replaying ? Math.min(this.chunkBytes, this.liveFrom - this.cursor) : this.chunkBytes;
      const range = this.host.readLog(this.cursor, max);
      if (range.data.length > 0) {
        this.cursor = range.offset + range.data.length;
        if (this.holding && this.host.logEnd - this.cursor <= this.maxLag / 4) this.release();
        return { type: "output", offset: range.offset, data: range.data, replay: range.offset < this.liveFrom };
      }
    }
    const exit = this.host.exit;
    if (exit && this.notices.length === 0) return { type: "exit", exit };
    return undefined;
  }

  private pushNotice(n: AgentNotice, atEnd: number): void {
    this.notices.push({ atEnd, notice: n });
    if (this.notices.length > MAX_PENDING_NOTICES && !this.failure) {
      this.failure = new GatewayError("resource_exhausted", "this client fell too far behind the agent's notices", {
        code: "client_too_slow",
      });
    }
  }

  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    this.host.holdOutput(this, false);
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

export function notice(
  kind: AgentNotice["kind"],
  message: string,
  extra: Omit<Partial<AgentNotice>, "kind" | "message" | "time"> = {},
): AgentNotice {
  return { kind, message, ...extra, time: new Date() };
}
