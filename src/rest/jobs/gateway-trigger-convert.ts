/**
 * The codex gateway's trigger records (seed `.codex-monitor-triggers.json` entries) <-> agentgate's
 * triggers. The seed's fields map onto a trigger and its job template:
 *
 * | seed                                   | agentgate                                           |
 * |----------------------------------------|-----------------------------------------------------|
 * | title / description / enabled          | name / description / !disabled                      |
 * | prompt_text (or prompt), system_prompt | job_template.prompt, .system_prompt                 |
 * | timeout_ms (or max_duration_ms)        | job_template.timeout_ms                             |
 * | idle_timeout_ms, model                 | job_template.idle_timeout_ms, .model                |
 * | gateway_session_id                     | job_template.resume_thread_id (continue that thread)|
 * | tags                                   | the job label `gateway.tags` (a JSON array)         |
 * | schedule once{at}                      | once                                                |
 * | schedule daily{time, timezone}         | cron `M H * * *` in that time zone                  |
 * | schedule interval{interval_minutes}    | interval                                            |
 *
 * Beyond the seed, `schedule.mode` may be `cron {expression, timezone}` or
 * `file_change {root, paths, globs, debounce_ms}`, and `allow_overlap` is accepted. `env` and `cwd`
 * are refused (seed weakness 13), as is `?trigger_file=` (weakness 14) by the routes.
 */
import { invalidArgument } from "../../errors/gateway-error.js";
import type { TriggerRecord, TriggerSchedule } from "../../jobs/triggers/trigger-types.js";
import type { TriggerSpecInput } from "../../jobs/triggers/trigger-validate.js";
import type { JobSpec, JobStatus } from "../../jobs/types.js";
import { isoOrNull } from "./job-rest-helpers.js";

export const TAGS_LABEL = "gateway.tags";
const DAILY = /^(\d{1,2}) (\d{1,2}) \* \* \*$/;
const HH_MM = /^([01]?\d|2[0-3]):([0-5]\d)$/;
const NAME_FROM_PROMPT_CHARS = 80;

type ScheduleInput = NonNullable<TriggerSpecInput["schedule"]>;
type Body = Record<string, unknown>;

const present = (v: unknown) => v !== undefined && v !== null;

function str(b: Body, field: string): string | undefined {
  const v = b[field];
  if (!present(v)) return undefined;
  if (typeof v !== "string") throw invalidArgument(`${field} must be a string`, field);
  return v;
}

function positiveNumber(v: unknown, param: string): number {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0) throw invalidArgument(`${param} must be a number greater than zero`, param);
  return n;
}

function time(v: unknown, param: string): Date {
  const d = typeof v === "string" ? new Date(v) : new Date(NaN);
  if (!Number.isFinite(d.getTime())) throw invalidArgument(`${param} must be an ISO 8601 time`, param);
  return d;
}

function stringList(v: unknown, param: string): string[] | undefined {
  if (!present(v)) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw invalidArgument(`${param} must be a list of strings`, param);
  return v as string[];
}

/** A seed schedule (the mode inferred from its fields when not named, as the seed did). */
export function scheduleFromGateway(raw: unknown): ScheduleInput {
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    throw invalidArgument("schedule is required: {mode: once|daily|interval|cron|file_change, ...}", "schedule");
  const s = raw as Body;
  const inferred = present(s.interval_minutes) || present(s.minutes) ? "interval" : present(s.time) ? "daily" : "once";
  const mode = typeof s.mode === "string" ? s.mode.toLowerCase() : inferred;
  const timeZone = (s.timezone ?? s.tz ?? "UTC") as unknown;
  if (typeof timeZone !== "string") throw invalidArgument("schedule.timezone must be a string", "schedule.timezone");
  switch (mode) {
    case "once":
      return { kind: "once", at: time(s.at ?? s.time, "schedule.at") };
    case "daily": {
      const m = typeof s.time === "string" ? HH_MM.exec(s.time.trim()) : null;
      if (!m) throw invalidArgument("schedule.time must be HH:MM (24-hour clock)", "schedule.time");
      return { kind: "cron", expression: `${Number(m[2])} ${Number(m[1])} * * *`, timeZone };
    }
    case "interval": {
      const minutes = positiveNumber(s.interval_minutes ?? s.minutes, "schedule.interval_minutes");
      return { kind: "interval", intervalMs: Math.round(minutes * 60_000) };
    }
    case "cron":
      if (typeof s.expression !== "string")
        throw invalidArgument("schedule.expression is required for mode cron", "schedule.expression");
      return { kind: "cron", expression: s.expression, timeZone };
    case "file_change":
      return {
        kind: "file_change",
        root: typeof s.root === "string" ? s.root : undefined,
        paths: stringList(s.paths, "schedule.paths"),
        globs: stringList(s.globs, "schedule.globs"),
        debounceMs: present(s.debounce_ms) ? positiveNumber(s.debounce_ms, "schedule.debounce_ms") : undefined,
      };
    default:
      throw invalidArgument(
        `schedule.mode ${JSON.stringify(s.mode)} is not one of once, daily, interval, cron, file_change`,
        "schedule.mode",
      );
  }
}

export function scheduleToGateway(s: TriggerSchedule): Record<string, unknown> {
  switch (s.kind) {
    case "once":
      return { mode: "once", at: s.at.toISOString() };
    case "interval":
      return {
        mode: "interval",
        interval_minutes: s.intervalMs / 60_000,
        ...(s.startAt ? { start_at: s.startAt.toISOString() } : {}),
      };
    case "cron": {
      const daily = DAILY.exec(s.expression);
      if (daily && Number(daily[1]) < 60 && Number(daily[2]) < 24) {
        const hhmm = `${daily[2]!.padStart(2, "0")}:${daily[1]!.padStart(2, "0")}`;
        return { mode: "daily", time: hhmm, timezone: s.timeZone };
      }
      return { mode: "cron", expression: s.expression, timezone: s.timeZone };
    }
    case "file_change":
      return { mode: "file_change", root: s.root, paths: s.paths, globs: s.globs, debounce_ms: s.debounceMs };
  }
}

function tagsOf(template: JobSpec): string[] {
  const raw = template.labels?.[TAGS_LABEL];
  if (!raw) return [];
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === "string") : [];
  } catch {
    return [];
  }
}

/** The seed's last_status: success or error once a job ended, running before. */
function lastStatus(s: JobStatus | undefined, lastError: string): string | null {
  if (s === undefined) return lastError ? "error" : null;
  if (s === "succeeded") return "success";
  return s === "pending" || s === "running" ? "running" : "error";
}

export function triggerToGateway(t: TriggerRecord, now: Date): Record<string, unknown> {
  const { spec } = t;
  const template = spec.jobTemplate;
  const s = spec.schedule;
  return {
    id: t.id,
    title: spec.name,
    description: spec.description,
    prompt_text: template.prompt ?? template.operatorRequest ?? "",
    schedule: scheduleToGateway(s),
    enabled: !spec.disabled,
    tags: tagsOf(template),
    system_prompt: template.systemPrompt ?? "",
    env: null,
    cwd: null,
    timeout_ms: template.timeoutMs || null,
    idle_timeout_ms: template.idleTimeoutMs || null,
    gateway_session_id: template.resumeThreadId || null,
    created_at: t.createdAt.toISOString(),
    last_fired: isoOrNull(t.lastFiredAt),
    last_status: lastStatus(t.lastStatus, t.lastError),
    last_error: t.lastError || null,
    last_attempt_at: isoOrNull(t.lastFiredAt),
    // A one-shot whose time has passed without firing (it fires at the scheduler's next look).
    overdue: s.kind === "once" && !spec.disabled && t.fireCount === 0 && s.at.getTime() <= now.getTime(),
    // agentgate extensions
    next_fire: isoOrNull(t.nextFireAt),
    updated_at: t.updatedAt.toISOString(),
    model: template.model || null,
    allow_overlap: spec.allowOverlap,
    last_job_id: t.lastJobId || null,
    last_job_status: t.lastStatus ?? null,
    fire_count: t.fireCount,
  };
}

/**
 * A trigger from a seed body. `old` (an update): only the fields present in the body change, the
 * rest of the trigger (also job template fields the seed has no name for) is kept; `mask` lists
 * what changes, as TriggerScheduler.update takes it. `resumeThreadId`: gateway_session_id already
 * resolved to a thread by the caller ("" to clear it).
 */
export function triggerFromGateway(
  b: Body,
  o: { id?: string; old?: TriggerRecord; resumeThreadId?: string },
): { input: TriggerSpecInput; mask: string[] } {
  const mask: string[] = [];
  const template: JobSpec = { ...(o.old?.spec.jobTemplate ?? {}) };
  const setTemplate = <K extends keyof JobSpec>(key: K, path: string, value: JobSpec[K] | undefined) => {
    if (value === undefined) delete template[key];
    else template[key] = value;
    mask.push(`job_template.${path}`);
  };

  const prompt = str(b, "prompt_text") ?? str(b, "prompt");
  if (prompt !== undefined) setTemplate("prompt", "prompt", prompt);
  else if (!o.old) throw invalidArgument("prompt_text is required", "prompt_text");
  const system = str(b, "system_prompt");
  if (system !== undefined) setTemplate("systemPrompt", "system_prompt", system || undefined);
  const timeout = b.timeout_ms ?? b.max_duration_ms;
  if ("timeout_ms" in b || "max_duration_ms" in b)
    setTemplate(
      "timeoutMs",
      "timeout_ms",
      present(timeout) ? Math.round(positiveNumber(timeout, "timeout_ms")) : undefined,
    );
  if ("idle_timeout_ms" in b)
    setTemplate(
      "idleTimeoutMs",
      "idle_timeout_ms",
      present(b.idle_timeout_ms) ? Math.round(positiveNumber(b.idle_timeout_ms, "idle_timeout_ms")) : undefined,
    );
  const model = str(b, "model");
  if ("model" in b) setTemplate("model", "model", model || undefined);
  if (o.resumeThreadId !== undefined) setTemplate("resumeThreadId", "resume_thread_id", o.resumeThreadId || undefined);
  if ("tags" in b) {
    const tags = stringList(b.tags, "tags") ?? [];
    const labels = { ...template.labels };
    delete labels[TAGS_LABEL];
    if (tags.length) {
      labels[TAGS_LABEL] = JSON.stringify(tags);
      if (labels[TAGS_LABEL].length > 256) throw invalidArgument("tags: at most 256 characters in all", "tags");
    }
    setTemplate("labels", "labels", Object.keys(labels).length ? labels : undefined);
  }

  const input: TriggerSpecInput = {
    name: o.old?.spec.name ?? "",
    description: o.old?.spec.description ?? "",
    schedule: o.old?.spec.schedule,
    jobTemplate: template,
    disabled: o.old?.spec.disabled ?? false,
    allowOverlap: o.old?.spec.allowOverlap ?? false,
  };
  const title = str(b, "title");
  if (title?.trim()) {
    input.name = title;
    mask.push("name");
  } else if (!o.old) {
    input.name = o.id ?? [...(prompt ?? "").trim().split("\n", 1)[0]!].slice(0, NAME_FROM_PROMPT_CHARS).join("");
  }
  const description = str(b, "description");
  if (description !== undefined) {
    input.description = description;
    mask.push("description");
  }
  if (present(b.enabled)) {
    if (typeof b.enabled !== "boolean") throw invalidArgument("enabled must be true or false", "enabled");
    input.disabled = !b.enabled;
    mask.push("disabled");
  }
  if (present(b.allow_overlap)) {
    if (typeof b.allow_overlap !== "boolean")
      throw invalidArgument("allow_overlap must be true or false", "allow_overlap");
    input.allowOverlap = b.allow_overlap;
    mask.push("allow_overlap");
  }
  if (present(b.schedule) || !o.old) {
    input.schedule = scheduleFromGateway(b.schedule);
    mask.push("schedule");
  }
  return { input, mask };
}
