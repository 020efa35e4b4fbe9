-- The search index (src/search/index/index-store.ts). One row per indexed file, its chunks and its
-- symbols; a file's rows are replaced together in one transaction, so a crash mid-way leaves the old
-- version or the new one, never a mix, and the next scan (content hash) picks up what is missing.
-- Vectors live in the vector store (pgvector table or Qdrant), keyed by chunk id.

CREATE TABLE search_files (
  root         text        NOT NULL,
  path         text        NOT NULL,
  sha256       text        NOT NULL,
  size_bytes   bigint      NOT NULL,
  modified_at  timestamptz,
  language     text        NOT NULL DEFAULT '',
  indexed_at   timestamptz NOT NULL,
  chunk_count  integer     NOT NULL DEFAULT 0,
  symbol_count integer     NOT NULL DEFAULT 0,
  -- chunks of this file whose vectors are stored (embedding is a second step after the text index)
  embedded     boolean     NOT NULL DEFAULT false,
  -- why the file could not be indexed (too large, binary ...); its chunks are then absent
  error        text        NOT NULL DEFAULT '',
  PRIMARY KEY (root, path)
);

CREATE TABLE search_chunks (
  id          text    PRIMARY KEY,
  root        text    NOT NULL,
  path        text    NOT NULL,
  start_line  integer NOT NULL,
  end_line    integer NOT NULL,
  language    text    NOT NULL DEFAULT '',
  symbol      text    NOT NULL DEFAULT '',
  content     text    NOT NULL,
  -- identifiers split (camelCase, snake_case) plus the path's words: what full-text search sees
  lexemes     tsvector NOT NULL
);
CREATE INDEX search_chunks_file_idx ON search_chunks (root, path);
CREATE INDEX search_chunks_lexemes_idx ON search_chunks USING gin (lexemes);

CREATE TABLE search_symbols (
  root       text    NOT NULL,
  path       text    NOT NULL,
  name       text    NOT NULL,
  kind       integer NOT NULL,
  start_line integer NOT NULL,
  end_line   integer NOT NULL,
  signature  text    NOT NULL DEFAULT '',
  container  text    NOT NULL DEFAULT '',
  language   text    NOT NULL DEFAULT ''
);
CREATE INDEX search_symbols_file_idx ON search_symbols (root, path);
CREATE INDEX search_symbols_name_idx ON search_symbols (lower(name));
