-- Agents (src/agents/agent-store.ts): one row per agent, written when it starts, on state changes and
-- (debounced) as output flows. The terminal itself lives only on the replica that spawned it
-- (instance_id, replica_address); node_key (host + DATA_DIR) lets that replica recognise its own
-- agents after a restart and mark the ones that died with it. Output is in
-- <DATA_DIR>/agents/<id>/output.log*, not here. Environment values are never stored (secrets).

CREATE TABLE agents (
  id               text        PRIMARY KEY,
  name             text        NOT NULL DEFAULT '',
  labels           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  -- argv, working directory, sandbox, network, limits, watch rules, term ... as given at start
  spec             jsonb       NOT NULL,
  state            text        NOT NULL,
  pid              integer     NOT NULL DEFAULT 0,
  instance_id      text        NOT NULL,
  node_key         text        NOT NULL,
  replica_address  text        NOT NULL DEFAULT '',
  cols             integer     NOT NULL,
  rows             integer     NOT NULL,
  exit_code        integer,
  exit_signal      integer,
  exit_reason      text,
  exit_message     text,
  ended_at         timestamptz,
  output_bytes     bigint      NOT NULL DEFAULT 0,
  log_start_offset bigint      NOT NULL DEFAULT 0,
  input_bytes      bigint      NOT NULL DEFAULT 0,
  paused_by_rule   text        NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL,
  started_at       timestamptz,
  last_activity_at timestamptz
);

-- ListAgents: newest first, keyset paging on (created_at, id).
CREATE INDEX agents_created_idx ON agents (created_at DESC, id DESC);
-- Start-up recovery: this replica's agents that have not ended.
CREATE INDEX agents_unfinished_idx ON agents (node_key) WHERE state <> 'exited';
