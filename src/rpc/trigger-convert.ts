/** agentgate.v1 Trigger messages <-> the trigger domain (src/jobs/triggers/). */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  TriggerSchema,
  TriggerSpecSchema,
  type Trigger as PbTrigger,
  type TriggerSpec as PbTriggerSpec,
} from "../../gen/agentgate/v1/job_service_pb.js";
import type { TriggerRecord, TriggerSpec } from "../jobs/triggers/trigger-types.js";
import type { TriggerSpecInput } from "../jobs/triggers/trigger-validate.js";
import { pbJobSpec, pbStatus, toJobSpec } from "./job-convert.js";

export function toTriggerSpecInput(s: PbTriggerSpec | undefined): TriggerSpecInput {
  const sch = s?.schedule;
  let schedule: TriggerSpecInput["schedule"];
  if (sch?.case === "interval")
    schedule = {
      kind: "interval",
      intervalMs: sch.value.interval ? durationMs(sch.value.interval) : 0,
      startAt: sch.value.startAt ? timestampDate(sch.value.startAt) : undefined,
    };
  else if (sch?.case === "cron")
    schedule = { kind: "cron", expression: sch.value.expression, timeZone: sch.value.timeZone || undefined };
  else if (sch?.case === "once")
    schedule = { kind: "once", at: sch.value.at ? timestampDate(sch.value.at) : undefined };
  else if (sch?.case === "fileChange")
    schedule = {
      kind: "file_change",
      root: sch.value.root || undefined,
      paths: sch.value.paths,
      globs: sch.value.globs,
      debounceMs: sch.value.debounce ? durationMs(sch.value.debounce) : undefined,
    };
  return {
    name: s?.name ?? "",
    description: s?.description,
    schedule,
    jobTemplate: s?.jobTemplate ? toJobSpec(s.jobTemplate) : undefined,
    disabled: s?.disabled,
    allowOverlap: s?.allowOverlap,
  };
}

export function pbTriggerSpec(s: TriggerSpec): PbTriggerSpec {
  const sch = s.schedule;
  const schedule: PbTriggerSpec["schedule"] =
    sch.kind === "interval"
      ? {
          case: "interval",
          value: {
            $typeName: "agentgate.v1.TriggerInterval",
            interval: durationFromMs(sch.intervalMs),
            startAt: sch.startAt ? timestampFromDate(sch.startAt) : undefined,
          },
        }
      : sch.kind === "cron"
        ? {
            case: "cron",
            value: { $typeName: "agentgate.v1.TriggerCron", expression: sch.expression, timeZone: sch.timeZone },
          }
        : sch.kind === "once"
          ? { case: "once", value: { $typeName: "agentgate.v1.TriggerOnce", at: timestampFromDate(sch.at) } }
          : {
              case: "fileChange",
              value: {
                $typeName: "agentgate.v1.TriggerFileChange",
                root: sch.root,
                paths: sch.paths,
                globs: sch.globs,
                debounce: durationFromMs(sch.debounceMs),
              },
            };
  return create(TriggerSpecSchema, {
    name: s.name,
    description: s.description,
    schedule,
    jobTemplate: pbJobSpec(s.jobTemplate),
    disabled: s.disabled,
    allowOverlap: s.allowOverlap,
  });
}

export function pbTrigger(t: TriggerRecord): PbTrigger {
  return create(TriggerSchema, {
    id: t.id,
    spec: pbTriggerSpec(t.spec),
    createdAt: timestampFromDate(t.createdAt),
    updatedAt: timestampFromDate(t.updatedAt),
    lastFiredAt: t.lastFiredAt ? timestampFromDate(t.lastFiredAt) : undefined,
    lastJobId: t.lastJobId,
    lastStatus: t.lastStatus ? pbStatus(t.lastStatus) : undefined,
    lastError: t.lastError,
    nextFireAt: t.nextFireAt ? timestampFromDate(t.nextFireAt) : undefined,
    fireCount: BigInt(t.fireCount),
  });
}
