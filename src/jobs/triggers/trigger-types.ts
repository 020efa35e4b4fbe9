/**
 * Trigger domain types (proto agentgate.v1 TriggerSpec / Trigger). A trigger submits a job from its
 * template on a schedule or when files change; see trigger-scheduler.ts.
 */
import type { JobSpec, JobStatus } from "../types.js";

export type TriggerSchedule =
  | {
      kind: "interval";
      intervalMs: number;
      /** First firing; undefined: one interval after creation. */
      startAt?: Date;
    }
  | {
      kind: "cron";
      /** Five fields, or six with a leading seconds field. */
      expression: string;
      /** IANA name; "UTC" when the request named none. */
      timeZone: string;
    }
  | { kind: "once"; at: Date }
  | {
      kind: "file_change";
      /** Absolute, realpath'd: an allowed root or a directory inside one. */
      root: string;
      /** Relative to root (POSIX separators); empty: the whole root. */
      paths: string[];
      /** Matched against the changed file's path relative to root; empty: every file. */
      globs: string[];
      debounceMs: number;
    };

export type TriggerScheduleKind = TriggerSchedule["kind"];

export interface TriggerSpec {
  name: string;
  description: string;
  schedule: TriggerSchedule;
  jobTemplate: JobSpec;
  disabled: boolean;
  /** Fire even while this trigger's previous job is pending or running. */
  allowOverlap: boolean;
}

export interface TriggerRecord {
  /** "trg_..." */
  id: string;
  spec: TriggerSpec;
  createdAt: Date;
  /** When the settings last changed (firings do not count). */
  updatedAt: Date;
  lastFiredAt?: Date;
  lastJobId: string;
  lastStatus?: JobStatus;
  /** A failed submission, a skipped firing, or the last job's error. */
  lastError: string;
  /** Timed schedules only; undefined once a one-shot trigger has fired. */
  nextFireAt?: Date;
  fireCount: number;
}

export interface ListTriggersQuery {
  /** 0/undefined: 50; at most 500. */
  pageSize?: number;
  pageToken?: string;
}
