/**
 * JobService RPC handlers: translate, delegate to the JobManager and the SessionCatalog
 * (src/jobs/), translate back. Errors become Connect codes in the error interceptor. The trigger
 * RPCs are not implemented here yet: the router answers them `unimplemented`.
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CancelJobResponseSchema,
  GetJobResponseSchema,
  GetSessionResponseSchema,
  JobEventSchema,
  JobStatusChangeSchema,
  ListJobsResponseSchema,
  ListSessionsResponseSchema,
  ResumeSessionResponseSchema,
  RunJobResponseSchema,
  SubmitJobResponseSchema,
  WatchJobResponseSchema,
  type JobService,
  type TriggerSpec as PbTriggerSpec,
  CreateTriggerResponseSchema,
  DeleteTriggerResponseSchema,
  GetTriggerResponseSchema,
  ListTriggersResponseSchema,
  UpdateTriggerResponseSchema,
  type WatchJobResponse,
} from "../../gen/agentgate/v1/job_service_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../errors/gateway-error.js";
import type { JobManager } from "../jobs/job-manager.js";
import type { SessionCatalog } from "../jobs/session-catalog.js";
import type { TriggerScheduler } from "../jobs/triggers/trigger-scheduler.js";
import { pbTrigger, toTriggerSpecInput } from "./trigger-convert.js";
import {
  isEmptySpec,
  pbJob,
  pbJobEvent,
  pbSession,
  toDate,
  toJobSpec,
  toSessionSource,
  toStatuses,
} from "./job-convert.js";
import { toNumber } from "./agent-convert.js";

function requireJobId(id: string): string {
  if (!id) throw invalidArgument("job_id is required", "job_id");
  return id;
}

/** The sequence number of the newest event the hub holds for a job (0: none). */
function lastSequence(jobs: JobManager, id: string): number {
  return jobs.events.lastSequence(id);
}

export function jobService(
  jobs: JobManager,
  sessions: SessionCatalog,
  triggers: TriggerScheduler,
): Partial<ServiceImpl<typeof JobService>> {
  const requireTriggerId = (id: string) => {
    if (!id) throw invalidArgument("trigger_id is required", "trigger_id");
    return id;
  };
  return {
    async createTrigger(request) {
      const t = await triggers.create(toTriggerSpecInput(request.spec));
      return create(CreateTriggerResponseSchema, { trigger: pbTrigger(t) });
    },
    async getTrigger(request) {
      return create(GetTriggerResponseSchema, {
        trigger: pbTrigger(await triggers.get(requireTriggerId(request.triggerId))),
      });
    },
    async listTriggers(request) {
      const page = await triggers.list({
        pageSize: request.pageSize || undefined,
        pageToken: request.pageToken || undefined,
      });
      return create(ListTriggersResponseSchema, {
        triggers: page.triggers.map(pbTrigger),
        nextPageToken: page.nextPageToken,
      });
    },
    async updateTrigger(request) {
      const t = await triggers.update(
        requireTriggerId(request.triggerId),
        toTriggerSpecInput(request.spec),
        request.updateMask?.paths ?? [],
      );
      return create(UpdateTriggerResponseSchema, { trigger: pbTrigger(t) });
    },
    async deleteTrigger(request) {
      await triggers.delete(requireTriggerId(request.triggerId));
      return create(DeleteTriggerResponseSchema, {});
    },
    async submitJob(request) {
      let spec;
      if (request.retryOfJobId) {
        if (!isEmptySpec(request.spec)) throw invalidArgument("spec must be empty when retry_of_job_id is set", "spec");
        spec = {};
      } else {
        if (!request.spec) throw invalidArgument("spec is required", "spec");
        spec = toJobSpec(request.spec);
      }
      const job = await jobs.submit(spec, {
        requestId: request.requestId || undefined,
        retryOfJobId: request.retryOfJobId || undefined,
      });
      return create(SubmitJobResponseSchema, { job: pbJob(job) });
    },

    async getJob(request) {
      return create(GetJobResponseSchema, { job: pbJob(await jobs.get(requireJobId(request.jobId))) });
    },

    async listJobs(request) {
      const page = await jobs.list({
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        statuses: toStatuses(request.statuses),
        labels: request.labels,
        triggerId: request.triggerId || undefined,
        threadId: request.threadId || undefined,
      });
      return create(ListJobsResponseSchema, {
        jobs: page.jobs.map((j) => pbJob({ ...j, stdout: "", stderr: "", output: undefined })),
        nextPageToken: page.nextPageToken,
      });
    },

    async cancelJob(request) {
      return create(CancelJobResponseSchema, {
        job: pbJob(await jobs.cancel(requireJobId(request.jobId), request.reason)),
      });
    },

    async *watchJob(request, ctx): AsyncIterable<WatchJobResponse> {
      const id = requireJobId(request.jobId);
      let after = request.afterSequence === undefined ? undefined : toNumber(request.afterSequence, "after_sequence");
      if (after === undefined && jobs.events.has(id)) {
        // Unset: the current record first, then live events. The position is read before the record,
        // so the record is at least as new as every event skipped.
        after = lastSequence(jobs, id);
        const job = pbJob({ ...(await jobs.get(id)), stdout: "", stderr: "" });
        yield create(WatchJobResponseSchema, {
          event: create(JobEventSchema, {
            sequence: BigInt(after),
            time: timestampFromDate(new Date()),
            event: {
              case: "statusChange",
              value: create(JobStatusChangeSchema, {
                previousStatus: job.status,
                status: job.status,
                job,
              }),
            },
          }),
        });
      }
      // Jobs this replica does not follow start with a status change carrying the record anyway.
      for await (const e of jobs.watch(id, after ?? 0, request.includeOutput, ctx.signal))
        yield create(WatchJobResponseSchema, { event: pbJobEvent(e) });
    },

    async runJob(request, ctx) {
      if (!request.spec) throw invalidArgument("spec is required", "spec");
      const job = await jobs.run(
        toJobSpec(request.spec),
        { requestId: request.requestId || undefined, cancelOnDisconnect: request.cancelOnDisconnect },
        ctx.signal,
      );
      return create(RunJobResponseSchema, { job: pbJob(job) });
    },

    async listSessions(request) {
      const page = await sessions.list({
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        updatedAfter: toDate(request.updatedAfter),
        source: toSessionSource(request.source),
      });
      return create(ListSessionsResponseSchema, {
        sessions: page.sessions.map(pbSession),
        nextPageToken: page.nextPageToken,
      });
    },

    async getSession(request) {
      const session = await sessions.get(request.sessionId, {
        tailMessages: request.tailMessages,
        includeEvents: request.includeEvents,
        tailEvents: request.tailEvents,
      });
      return create(GetSessionResponseSchema, { session: pbSession(session) });
    },

    async resumeSession(request) {
      const job = await sessions.resume(request.sessionId, {
        prompt: request.prompt,
        model: request.model,
        timeoutMs: request.timeoutMs,
        callbackUrl: request.callbackUrl,
        labels: request.labels,
        requestId: request.requestId,
      });
      return create(ResumeSessionResponseSchema, { job: pbJob(job) });
    },
  };
}
