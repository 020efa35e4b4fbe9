/** Sequential-latency and closed-loop throughput runners. */

export type Op = () => Promise<unknown>;

/** Runs `op` one call at a time (`count` calls, or fewer once `budgetMs` is spent); returns each call's latency in ms. */
export async function sequential(op: Op, count: number, budgetMs = Number.POSITIVE_INFINITY): Promise<number[]> {
  const out: number[] = [];
  const deadline = performance.now() + budgetMs;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await op();
    const t1 = performance.now();
    out.push(t1 - t0);
    if (t1 > deadline) break;
  }
  return out;
}

export interface LoadResult {
  concurrency: number;
  durationMs: number;
  requests: number;
  errors: number;
  rps: number;
  latencies: number[];
  firstError?: string;
}

/**
 * Keeps `concurrency` calls in flight for `durationMs` (closed loop: each worker starts its
 * next call when the previous one ends). Counts calls that complete inside the window.
 */
export async function closedLoop(op: Op, concurrency: number, durationMs: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await op();
        const t1 = performance.now();
        if (t1 <= deadline) latencies.push(t1 - t0);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = Math.min(performance.now(), deadline) - start;
  return {
    concurrency,
    durationMs: elapsed,
    requests: latencies.length,
    errors,
    rps: (latencies.length / elapsed) * 1000,
    latencies,
    firstError,
  };
}
