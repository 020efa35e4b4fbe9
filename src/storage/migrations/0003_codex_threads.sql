-- The `codex` model backend (src/backends/codex/): a client's conversation_id maps to the Codex thread
-- that holds its history, so later requests resume that thread (`codex exec resume <thread_id>`).
-- Codex reports token usage as thread totals; the last totals are kept here so each answer can report
-- its own share (the difference).

CREATE TABLE codex_threads (
  conversation_id         text        PRIMARY KEY,
  thread_id               text        NOT NULL,
  input_tokens            bigint      NOT NULL DEFAULT 0,
  cached_input_tokens     bigint      NOT NULL DEFAULT 0,
  output_tokens           bigint      NOT NULL DEFAULT 0,
  reasoning_output_tokens bigint      NOT NULL DEFAULT 0,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now()
);
