-- agentgate replicas sharing this database register here (src/storage/instances.ts). Agents are pinned
-- to the replica that spawned them; its id and address let any replica route an attach to it.
-- Liveness is heartbeat_at, written with the database clock (now()) so replicas' clocks do not matter.

CREATE TABLE instances (
  id           text        PRIMARY KEY,
  address      text        NOT NULL,
  version      text        NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX instances_heartbeat_at_idx ON instances (heartbeat_at);
