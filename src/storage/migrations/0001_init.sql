-- Bookkeeping for the migration runner (src/storage/migrations.ts) and small settings.
-- Runs inside a transaction; must stay valid on PostgreSQL 15+ and PGlite. Never edit once applied.

CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- Small key/value settings shared by all replicas (e.g. a generated installation id).
CREATE TABLE kv_settings (
  key        text        PRIMARY KEY,
  value      jsonb       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
