/**
 * WatchJob's events for jobs this replica knows about: a sequence-numbered log per job, kept in
 * memory with a cap (output chunks are the bulk), and live listeners. A watcher replays what it
 * missed (after_sequence), then follows; once the job reached a final status and the watcher has
 * everything, its stream ends. For jobs that run on another replica the manager polls the record
 * and emits its status changes here, so watchers see one stream either way.
 */
import type { JobEvent, JobStatus, SequencedJobEvent } from "./types.js";

const MAX_EVENTS_PER_JOB = 5000;
const MAX_BYTES_PER_JOB = 8 * 1024 * 1024;
/** Finished jobs' logs are kept this long for late watchers, then only the record is. */
const KEEP_FINISHED_MS = 5 * 60_000;

interface JobLog {
  events: SequencedJobEvent[];
  bytes: number;
  next: number;
  /** Oldest sequence still held (older ones were dropped by the cap). */
  first: number;
  finished: boolean;
  /** The status of the newest status event (to tell whether a record read elsewhere is news). */
  status?: JobStatus;
  listeners: Set<() => void>;
  expiry?: NodeJS.Timeout;
}

const sizeOf = (e: JobEvent) => (e.type === "output" ? e.data.length : 256);

export class JobEventHub {
  private readonly logs = new Map<string, JobLog>();

  private log(jobId: string): JobLog {
    let l = this.logs.get(jobId);
    if (!l) {
      l = { events: [], bytes: 0, next: 1, first: 1, finished: false, listeners: new Set() };
      this.logs.set(jobId, l);
    }
    return l;
  }

  has(jobId: string): boolean {
    return this.logs.has(jobId);
  }

  /** Status of the newest status event held for a job. */
  status(jobId: string): JobStatus | undefined {
    return this.logs.get(jobId)?.status;
  }

  finished(jobId: string): boolean {
    return this.logs.get(jobId)?.finished ?? false;
  }

  /** Whether anyone follows the job now. */
  watched(jobId: string): boolean {
    return (this.logs.get(jobId)?.listeners.size ?? 0) > 0;
  }

  /** Forgets a job nobody follows whose end this replica will not see (it runs elsewhere). */
  drop(jobId: string): void {
    const l = this.logs.get(jobId);
    if (l && !l.finished && l.listeners.size === 0) this.logs.delete(jobId);
  }

  /** Sequence of the newest event held for a job; 0 when none (without creating a log for it). */
  lastSequence(jobId: string): number {
    const l = this.logs.get(jobId);
    return l ? l.next - 1 : 0;
  }

  emit(jobId: string, event: JobEvent, final = false): void {
    const l = this.log(jobId);
    l.events.push({ sequence: l.next++, time: new Date(), event });
    l.bytes += sizeOf(event);
    if (event.type === "status") l.status = event.status;
    while (l.events.length > MAX_EVENTS_PER_JOB || (l.bytes > MAX_BYTES_PER_JOB && l.events.length > 1)) {
      const dropped = l.events.shift()!;
      l.bytes -= sizeOf(dropped.event);
      l.first = dropped.sequence + 1;
    }
    if (final) {
      l.finished = true;
      l.expiry = setTimeout(() => this.logs.delete(jobId), KEEP_FINISHED_MS);
      l.expiry.unref();
    }
    for (const wake of l.listeners) wake();
  }

  /** Events after `afterSequence`, then live ones until the final status or `signal` aborts. */
  async *follow(jobId: string, afterSequence: number, signal: AbortSignal): AsyncIterable<SequencedJobEvent> {
    const l = this.log(jobId);
    let cursor = afterSequence;
    let wake: (() => void) | undefined;
    const listener = () => wake?.();
    l.listeners.add(listener);
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        const pending = l.events.filter((e) => e.sequence > cursor);
        for (const e of pending) {
          cursor = e.sequence;
          yield e;
        }
        if (pending.length) continue;
        if (l.finished || signal.aborted) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      l.listeners.delete(listener);
      signal.removeEventListener("abort", onAbort);
    }
  }

  close(): void {
    for (const l of this.logs.values()) {
      clearTimeout(l.expiry);
      l.finished = true;
      for (const wake of l.listeners) wake();
    }
  }
}
