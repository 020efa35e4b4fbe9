/**
 * Shared by the seed REST surfaces over the job domain (rest/jobs/codex-proxy-routes.ts, the apphub
 * codex-proxy API, and rest/jobs/gateway-routes.ts, the codex gateway's /completion).
 */
import type { FastifyReply } from "fastify";
import { GatewayError } from "../../errors/gateway-error.js";
import type { JobManager } from "../../jobs/job-manager.js";
import type { JobRecord, JobSpec } from "../../jobs/types.js";

/**
 * An AbortSignal that aborts when the client goes away before the reply was sent. A real
 * AbortSignal (not util/cancel-signal's Cancellation): JobManager combines it with AbortSignal.any.
 */
export function disconnectSignal(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) gone.abort(new Error("client disconnected"));
  });
  return gone.signal;
}

/** ISO 8601, or null when unset. */
export const isoOrNull = (d: Date | undefined): string | null => (d ? d.toISOString() : null);

/** Empty string -> null (the seeds answer null for what is not there). */
export const textOrNull = (s: string): string | null => (s === "" ? null : s);

export interface RunResult {
  job: JobRecord;
  /** The raw `codex exec --json` events, at most `maxEvents` of them. */
  codexEvents: Record<string, unknown>[];
  eventsTruncated: boolean;
}

/**
 * Submits a job and waits for its end, collecting Codex's events on the way (JobManager.run, plus
 * the events). When `signal` aborts (the client went away) the job is canceled and this throws
 * `canceled`. Validation errors are thrown by submit, before anything runs.
 */
export async function runCollecting(
  jobs: JobManager,
  spec: JobSpec,
  signal: AbortSignal,
  opts: { maxEvents: number; cancelReason: string },
): Promise<RunResult> {
  const submitted = await jobs.submit(spec);
  const codexEvents: Record<string, unknown>[] = [];
  let eventsTruncated = false;
  try {
    for await (const e of jobs.watch(submitted.id, 0, false, signal)) {
      if (e.event.type !== "codex") continue;
      if (codexEvents.length < opts.maxEvents) codexEvents.push(e.event.event.raw);
      else eventsTruncated = true;
    }
  } finally {
    if (signal.aborted) await jobs.cancel(submitted.id, opts.cancelReason).catch(() => undefined);
  }
  if (signal.aborted) throw new GatewayError("canceled", "the caller went away; the job was canceled");
  return { job: await jobs.get(submitted.id), codexEvents, eventsTruncated };
}
