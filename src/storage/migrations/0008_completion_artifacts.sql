-- Retrieval-augmented chat exchanges (src/retrieval/artifact-store.ts), one row each: the client's
-- messages, the injected context and its citations, the answer and how it ended. The earlier
-- codex-context wrote them as markdown files into its repository; here they are rows, listed newest
-- first with keyset paging on (created_at, id).

CREATE TABLE completion_artifacts (
  id             text        PRIMARY KEY,
  created_at     timestamptz NOT NULL,
  completion_id  text        NOT NULL,
  model          text        NOT NULL,
  backend        text        NOT NULL,
  query          text        NOT NULL,
  messages       jsonb       NOT NULL,
  context_prompt text        NOT NULL,
  citations      jsonb       NOT NULL,
  context_tokens integer     NOT NULL,
  answer         jsonb       NOT NULL,
  finish_reason  text,
  usage          jsonb,
  status         text        NOT NULL,
  error          text        NOT NULL DEFAULT ''
);

CREATE INDEX completion_artifacts_created_idx ON completion_artifacts (created_at, id);
CREATE INDEX completion_artifacts_model_idx ON completion_artifacts (model, created_at, id);
