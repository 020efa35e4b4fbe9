/** Recorded retrieval-augmented exchanges (table completion_artifacts, migration 0008). */
import type { ChatMessage, FinishReason, Usage } from "../completion/types.js";
import { GatewayError, invalidArgument } from "../errors/gateway-error.js";
import type { Database } from "../storage/database.js";
import { keysetPage } from "../storage/page-token.js";
import type { Artifact, ArtifactStatus, Citation } from "./types.js";

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;

interface Row {
  id: string;
  created_at: Date;
  completion_id: string;
  model: string;
  backend: string;
  query: string;
  messages?: ChatMessage[] | string;
  context_prompt?: string;
  citations: Citation[] | string;
  context_tokens: number;
  answer: ChatMessage | string;
  finish_reason: FinishReason | null;
  usage: Usage | string | null;
  status: ArtifactStatus;
  error: string;
}

/** jsonb arrives parsed from node-postgres and PGlite, but tolerate a string. */
const json = <T>(v: T | string): T => (typeof v === "string" ? (JSON.parse(v) as T) : v);

const SUMMARY_COLUMNS = `id, created_at, completion_id, model, backend, query, citations, context_tokens, answer,
  finish_reason, usage, status, error`;

function toArtifact(r: Row): Artifact {
  return {
    id: r.id,
    createdAt: new Date(r.created_at),
    completionId: r.completion_id,
    model: r.model,
    backend: r.backend,
    query: r.query,
    messages: r.messages === undefined ? [] : json(r.messages),
    contextPrompt: r.context_prompt ?? "",
    citations: json(r.citations),
    contextTokens: r.context_tokens,
    answer: json(r.answer),
    finishReason: r.finish_reason ?? undefined,
    usage: r.usage === null ? undefined : json(r.usage),
    status: r.status,
    error: r.error,
  };
}

export class ArtifactStore {
  constructor(private readonly db: Database) {}

  async record(a: Artifact): Promise<void> {
    await this.db.query(
      `INSERT INTO completion_artifacts (id, created_at, completion_id, model, backend, query, messages,
         context_prompt, citations, context_tokens, answer, finish_reason, usage, status, error)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10, $11::jsonb, $12, $13::jsonb, $14, $15)`,
      [
        a.id,
        a.createdAt,
        a.completionId,
        a.model,
        a.backend,
        a.query,
        JSON.stringify(a.messages),
        a.contextPrompt,
        JSON.stringify(a.citations),
        a.contextTokens,
        JSON.stringify(a.answer),
        a.finishReason ?? null,
        a.usage ? JSON.stringify(a.usage) : null,
        a.status,
        a.error,
      ],
    );
  }

  async get(id: string): Promise<Artifact> {
    if (!id) throw invalidArgument("id is required", "id");
    const r = await this.db.query<Row>(
      `SELECT ${SUMMARY_COLUMNS}, messages, context_prompt FROM completion_artifacts WHERE id = $1`,
      [id],
    );
    if (!r.rows[0]) throw new GatewayError("not_found", `no artifact ${id.slice(0, 100)}`, { param: "id" });
    return toArtifact(r.rows[0]);
  }

  /** Newest first, without messages, context prompt and citation texts. */
  async list(q: {
    pageSize?: number;
    pageToken?: string;
    model?: string;
  }): Promise<{ artifacts: Artifact[]; nextPageToken: string }> {
    const pageSize = q.pageSize || DEFAULT_PAGE;
    if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE)
      throw invalidArgument(`page_size must be at most ${MAX_PAGE}`, "page_size");
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.model) {
      params.push(q.model);
      where.push(`model = $${params.length}`);
    }
    const page = await keysetPage<Row, Artifact>(this.db, {
      columns: SUMMARY_COLUMNS,
      from: "completion_artifacts",
      where,
      params,
      pageToken: q.pageToken,
      pageSize,
      order: "newest",
      toRecord: (row) => {
        const a = toArtifact(row);
        return { ...a, citations: a.citations.map((c) => ({ ...c, text: "" })) };
      },
    });
    return { artifacts: page.items, nextPageToken: page.nextPageToken };
  }
}
