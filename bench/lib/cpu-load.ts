/**
 * Closed-loop load with CPU accounting per request, for benches whose requests differ a lot in
 * cost (a 200-chunk stream vs a 1-chunk one). Unlike load.ts `closedLoop`, every call that
 * completes is counted, also those that end after the deadline, and the CPU of the watched
 * processes is read after the last call has ended: calls and CPU then cover the same work.
 */
import type { Op } from "./load.js";
import { processCpuMs } from "./processes.js";

export interface CpuLoadResult {
  /** Calls that completed (all of them, also after the deadline). */
  requests: number;
  errors: number;
  firstError?: string;
  /** From the start to the end of the last call, ms. */
  elapsedMs: number;
  /** CPU ms each watched process used in that time (undefined when it could not be read). */
  cpuMs: Record<string, number | undefined>;
  /** Latency of each completed call, ms. */
  latencies: number[];
}

/** Keeps `concurrency` calls of `op` in flight, starting new ones for `durationMs`. */
export async function closedLoopCpu(
  op: Op,
  concurrency: number,
  durationMs: number,
  pids: Record<string, number | undefined>,
): Promise<CpuLoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuMs(pid)]));
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await op();
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - start;
  const cpuMs = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => {
      const a = before[k];
      const b = processCpuMs(pid);
      return [k, a === undefined || b === undefined ? undefined : b - a];
    }),
  );
  return { requests: latencies.length, errors, firstError, elapsedMs, cpuMs, latencies };
}

/** Adds up rounds of the same scenario. */
export function mergeCpuLoad(results: CpuLoadResult[]): CpuLoadResult {
  const cpuMs: Record<string, number | undefined> = {};
  for (const r of results) {
    for (const [k, v] of Object.entries(r.cpuMs)) {
      cpuMs[k] = v === undefined || (k in cpuMs && cpuMs[k] === undefined) ? undefined : (cpuMs[k] ?? 0) + v;
    }
  }
  return {
    requests: results.reduce((n, r) => n + r.requests, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    firstError: results.find((r) => r.firstError)?.firstError,
    elapsedMs: results.reduce((n, r) => n + r.elapsedMs, 0),
    cpuMs,
    latencies: results.flatMap((r) => r.latencies),
  };
}

/** CPU µs per completed call of one watched process. */
export function cpuUsPerRequest(r: CpuLoadResult, key: string): number | undefined {
  const ms = r.cpuMs[key];
  return ms === undefined || r.requests === 0 ? undefined : (ms * 1000) / r.requests;
}
