/**
 * One holder at a time per key, in arrival order, within this process. The codex backend holds a
 * conversation's lock for a whole turn: two `codex exec resume` runs on one thread would interleave its
 * history and race on its stored token totals.
 */
import type { CancelSignal } from "../../util/cancel-signal.js";

export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Resolves to the release function once every earlier holder of `key` has released. */
  async acquire(key: string, signal: CancelSignal): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    // Our turn ends when we release, but never before the previous holder's did (a waiter that gives up
    // must not let the next one in early).
    const tail = previous.then(() => released);
    this.tails.set(key, tail);
    const done = () => {
      release();
      void tail.then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    };
    try {
      await untilAborted(previous, signal);
    } catch (err) {
      done();
      throw err;
    }
    return done;
  }
}

function untilAborted(p: Promise<void>, signal: CancelSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const listener = { handleEvent: () => reject(signal.reason) };
    signal.addEventListener("abort", listener, { once: true });
    void p.then(() => {
      signal.removeEventListener("abort", listener);
      resolve();
    });
  });
}
