-- Dreamed endpoints (src/endpoints/endpoint-store.ts). One row per route (method + path template
-- with its parameter names blanked), so `/dream/<path>` always resolves to one endpoint; every
-- dream of it is a row of endpoint_versions. Description embeddings live in the vector store
-- (pgvector or Qdrant), keyed by endpoint id.

-- Dreaming jobs hand their files back through the job record (the workspace is removed).
ALTER TABLE jobs ADD COLUMN output_files jsonb;

CREATE TABLE endpoints (
  id                 text        PRIMARY KEY,
  method             text        NOT NULL,
  path               text        NOT NULL,
  path_key           text        NOT NULL,
  description        text        NOT NULL,
  request_schema     jsonb,
  response_schema    jsonb,
  requested_examples jsonb       NOT NULL DEFAULT '[]'::jsonb,
  status             text        NOT NULL,
  served_version     integer     NOT NULL DEFAULT 0,
  latest_version     integer     NOT NULL DEFAULT 0,
  job_id             text        NOT NULL DEFAULT '',
  model              text        NOT NULL DEFAULT '',
  callback_url       text        NOT NULL DEFAULT '',
  callback_attempts  jsonb       NOT NULL DEFAULT '[]'::jsonb,
  ttl_ms             bigint,
  expires_at         timestamptz,
  labels             jsonb       NOT NULL DEFAULT '{}'::jsonb,
  -- The embedding model of the description's vector in the vector store; '' while it has none
  -- (the embedding model was unreachable): the sweep embeds it later.
  embedding_model    text        NOT NULL DEFAULT '',
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL
);

-- The route: two concurrent dreams of one route cannot both insert.
CREATE UNIQUE INDEX endpoints_route_idx ON endpoints (method, path_key);
-- ListEndpoints: newest first, keyset paging on (created_at, id).
CREATE INDEX endpoints_created_idx ON endpoints (created_at DESC, id DESC);
-- The expiry sweep.
CREATE INDEX endpoints_expiry_idx ON endpoints (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE endpoint_versions (
  endpoint_id     text        NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
  version         integer     NOT NULL,
  status          text        NOT NULL,
  -- DreamEndpoint idempotency: the request that started this version.
  request_id      text,
  job_id          text        NOT NULL DEFAULT '',
  description     text        NOT NULL,
  operation       jsonb,
  handler         jsonb,
  examples        jsonb       NOT NULL DEFAULT '[]'::jsonb,
  failure_reasons jsonb       NOT NULL DEFAULT '[]'::jsonb,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  completed_at    timestamptz,
  PRIMARY KEY (endpoint_id, version)
);

CREATE UNIQUE INDEX endpoint_versions_request_id_idx ON endpoint_versions (request_id) WHERE request_id IS NOT NULL;
-- The recovery sweep: versions whose job ended while no replica was there to validate them.
CREATE INDEX endpoint_versions_open_idx ON endpoint_versions (status, updated_at) WHERE status IN ('dreaming', 'validating');
