/**
 * The one loop every streaming REST reply runs (SSE and Ollama's NDJSON alike): pull the first event
 * before answering, so an early failure is a plain HTTP error thrown to the caller; then write every
 * event in the background and finish the stream, a late failure becoming the format's error frame.
 * Reads the events to their end, so a backend's clean-up after its last event runs.
 */

/** A streaming reply as the loop sees it. */
export interface EventSink {
  /** Aborted when the client goes away or the shutdown grace period ends. */
  readonly signal: AbortSignal;
  /** Sends the 200 and the headers. */
  open(): void;
  /** Ends the reply; with an error, the format's error frame first. */
  finish(err?: unknown): void | Promise<void>;
}

/** Resolves once the first event is written (or throws its failure); the rest runs in the background. */
export async function pipeEvents<E>(
  sink: EventSink,
  events: AsyncIterable<E>,
  write: (event: E) => Promise<void>,
  onEnd: () => void,
): Promise<void> {
  const it = events[Symbol.asyncIterator]();
  let first: IteratorResult<E>;
  try {
    first = await it.next();
  } catch (err) {
    onEnd();
    throw err;
  }
  sink.open();
  void (async () => {
    try {
      for (let r = first; !r.done; r = await it.next()) {
        if (sink.signal.aborted) throw sink.signal.reason;
        await write(r.value);
      }
      await sink.finish();
    } catch (err) {
      await sink.finish(err);
      await it.return?.().catch(() => undefined);
    } finally {
      onEnd();
    }
  })();
}
