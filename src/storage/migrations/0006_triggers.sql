-- Job triggers (src/jobs/triggers/trigger-store.ts): one row per trigger. `spec` is the whole
-- TriggerSpec in domain form (schedule, job template, disabled, allow_overlap); `disabled` is copied out
-- of it so the due-trigger index can exclude disabled rows. Replicas sharing one database claim an
-- occurrence by compare-and-set on (next_fire_at, updated_at), so each fires once.

CREATE TABLE job_triggers (
  id            text        PRIMARY KEY,
  name          text        NOT NULL DEFAULT '',
  description   text        NOT NULL DEFAULT '',
  spec          jsonb       NOT NULL,
  disabled      boolean     NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL,
  -- settings changed (not firings): part of the claim's compare-and-set
  updated_at    timestamptz NOT NULL,
  -- null: file-change triggers, and one-shot triggers that have fired
  next_fire_at  timestamptz,
  last_fired_at timestamptz,
  last_job_id   text        NOT NULL DEFAULT '',
  last_status   text,
  last_error    text        NOT NULL DEFAULT '',
  fire_count    bigint      NOT NULL DEFAULT 0
);

-- ListTriggers: oldest first, keyset paging on (created_at, id).
CREATE INDEX job_triggers_created_idx ON job_triggers (created_at, id);
-- The scheduler's poll: due triggers and the earliest next firing.
CREATE INDEX job_triggers_due_idx ON job_triggers (next_fire_at) WHERE NOT disabled;
