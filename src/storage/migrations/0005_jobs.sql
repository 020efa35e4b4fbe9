-- Codex jobs (src/jobs/job-store.ts): the durable queue and the job records in one table.
-- A replica claims pending jobs with FOR UPDATE SKIP LOCKED (no job is claimed twice, several
-- replicas on one Postgres share the queue) and keeps heartbeat_at fresh while it runs them; a
-- running job whose replica stopped (its heartbeat went stale, or its node restarted) is marked
-- 'interrupted'. Captured output is capped by the runner before it is stored here.

CREATE TABLE jobs (
  id                text        PRIMARY KEY,
  status            text        NOT NULL,
  -- JobSpec as submitted (context file contents included: the workspace is rebuilt from it)
  spec              jsonb       NOT NULL,
  labels            jsonb       NOT NULL DEFAULT '{}'::jsonb,
  request_id        text,
  trigger_id        text        NOT NULL DEFAULT '',
  retry_of_job_id   text        NOT NULL DEFAULT '',
  instance_id       text        NOT NULL DEFAULT '',
  node_key          text        NOT NULL DEFAULT '',
  replica_address   text        NOT NULL DEFAULT '',
  -- pid of the agentgate process running the job: at start, a replica with the same node key
  -- interrupts jobs whose process is gone
  owner_pid         integer     NOT NULL DEFAULT 0,
  heartbeat_at      timestamptz,
  cancel_requested  text,
  created_at        timestamptz NOT NULL,
  started_at        timestamptz,
  completed_at      timestamptz,
  updated_at        timestamptz NOT NULL,
  duration_ms       bigint      NOT NULL DEFAULT 0,
  exit_code         integer,
  stdout            text        NOT NULL DEFAULT '',
  stderr            text        NOT NULL DEFAULT '',
  stdout_truncated  boolean     NOT NULL DEFAULT false,
  stderr_truncated  boolean     NOT NULL DEFAULT false,
  output            jsonb,
  summary           text        NOT NULL DEFAULT '',
  final_message     text        NOT NULL DEFAULT '',
  error             text        NOT NULL DEFAULT '',
  failure_reason    text,
  usage             jsonb,
  thread_id         text        NOT NULL DEFAULT '',
  workspace         text        NOT NULL DEFAULT '',
  output_path       text        NOT NULL DEFAULT '',
  callback_attempts jsonb       NOT NULL DEFAULT '[]'::jsonb
);

-- SubmitJob idempotency: one job per client request id.
CREATE UNIQUE INDEX jobs_request_id_idx ON jobs (request_id) WHERE request_id IS NOT NULL;
-- The queue: oldest pending first.
CREATE INDEX jobs_pending_idx ON jobs (created_at, id) WHERE status = 'pending';
-- Watchdog: running jobs by replica and heartbeat.
CREATE INDEX jobs_running_idx ON jobs (heartbeat_at) WHERE status = 'running';
-- ListJobs: newest first, keyset paging on (created_at, id).
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
-- Sessions: the jobs of a Codex thread.
CREATE INDEX jobs_thread_idx ON jobs (thread_id) WHERE thread_id <> '';
-- Retention: finished jobs by completion time.
CREATE INDEX jobs_completed_idx ON jobs (completed_at) WHERE completed_at IS NOT NULL;
