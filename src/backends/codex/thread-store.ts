/**
 * conversation_id -> Codex thread (table `codex_threads`, migration 0003), with the thread's token totals
 * as of its last completed turn.
 */
import type { Queryable } from "../../storage/database.js";
import type { ExecUsage } from "./exec-events.js";

/** The thread totals `turn.completed` reported last (cache writes are not kept: nothing reports them). */
export type ThreadTotals = Pick<
  ExecUsage,
  "input_tokens" | "cached_input_tokens" | "output_tokens" | "reasoning_output_tokens"
>;

export interface CodexThreadRecord {
  conversationId: string;
  threadId: string;
  totals: ThreadTotals;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  conversation_id: string;
  thread_id: string;
  // bigint: node-postgres returns it as a string, PGlite as a number.
  input_tokens: string | number;
  cached_input_tokens: string | number;
  output_tokens: string | number;
  reasoning_output_tokens: string | number;
  created_at: Date;
  updated_at: Date;
}

export async function getCodexThread(db: Queryable, conversationId: string): Promise<CodexThreadRecord | undefined> {
  const r = await db.query<Row>(
    `SELECT conversation_id, thread_id, input_tokens, cached_input_tokens, output_tokens,
            reasoning_output_tokens, created_at, updated_at
       FROM codex_threads WHERE conversation_id = $1`,
    [conversationId],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return {
    conversationId: row.conversation_id,
    threadId: row.thread_id,
    totals: {
      input_tokens: Number(row.input_tokens),
      cached_input_tokens: Number(row.cached_input_tokens),
      output_tokens: Number(row.output_tokens),
      reasoning_output_tokens: Number(row.reasoning_output_tokens),
    },
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** Records (or moves on) a conversation's thread and its totals after a completed turn. */
export async function saveCodexThread(
  db: Queryable,
  conversationId: string,
  threadId: string,
  totals: ThreadTotals,
): Promise<void> {
  await db.query(
    `INSERT INTO codex_threads (conversation_id, thread_id, input_tokens, cached_input_tokens, output_tokens,
                                reasoning_output_tokens)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (conversation_id) DO UPDATE
       SET thread_id = EXCLUDED.thread_id, input_tokens = EXCLUDED.input_tokens,
           cached_input_tokens = EXCLUDED.cached_input_tokens, output_tokens = EXCLUDED.output_tokens,
           reasoning_output_tokens = EXCLUDED.reasoning_output_tokens, updated_at = now()`,
    [
      conversationId,
      threadId,
      totals.input_tokens,
      totals.cached_input_tokens,
      totals.output_tokens,
      totals.reasoning_output_tokens,
    ],
  );
}
