/** Internals shared by the PGlite and Postgres implementations (not part of the public API). */
import { AsyncLocalStorage } from "node:async_hooks";
import type { DatabaseHealth, QueryResult, StartupInfo, Transaction } from "./database.js";

export const HEALTH_TIMEOUT_MS = 5_000;

/** Advisory lock key shared by every agentgate schema change (migrations, CREATE EXTENSION). */
export const SCHEMA_LOCK_KEY = 1_634_168_169; // 'agmi'

export interface TxImpl {
  query<T>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
  exec(sql: string): Promise<void>;
}

/**
 * Detects use of the root handle from inside one of its own transaction callbacks. On PGlite that
 * would wait forever for the single connection; it is rejected on Postgres too so code behaves the same.
 */
export class TxScope {
  /**
   * The misuse check needs an AsyncLocalStorage, and on Node 20 one used even once turns on
   * promise hooks for the whole process: bench/completion measured ~7% of the gateway's CPU per
   * request in async_hooks. So the check is on only where it helps: in the test suite
   * (AGENTGATE_TX_GUARD=1, set by vitest.config.ts) and when an operator asks for it.
   */
  private readonly als =
    process.env.AGENTGATE_TX_GUARD === "1" ? new AsyncLocalStorage<{ active: boolean }>() : undefined;

  assertOutside(op: string): void {
    if (this.als?.getStore()?.active) {
      throw new Error(
        `db.${op}() called inside a transaction callback of the same database: use the tx argument ` +
          `(PGlite has a single connection, so this would deadlock)`,
      );
    }
  }

  async run<T>(impl: TxImpl, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const state = { active: true };
    const check = (op: string): void => {
      if (!state.active) throw new Error(`tx.${op}() called after the transaction finished`);
    };
    const tx: Transaction = {
      query: async <R = Record<string, unknown>>(sql: string, params?: unknown[]) => {
        check("query");
        return impl.query<R>(sql, params);
      },
      exec: async (sql: string) => {
        check("exec");
        return impl.exec(sql);
      },
    };
    try {
      return await (this.als ? this.als.run(state, () => fn(tx)) : fn(tx));
    } finally {
      state.active = false;
    }
  }
}

export function newStartupInfo(init: Omit<StartupInfo, "migrationsMs" | "migrationsApplied">): StartupInfo {
  return { ...init, migrationsMs: 0, migrationsApplied: [] };
}

export async function timedHealth(
  kind: string,
  probe: () => Promise<Omit<DatabaseHealth, "latencyMs" | "kind">>,
  fallbackVector: DatabaseHealth["vector"],
): Promise<DatabaseHealth> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms (database busy or unreachable)`)),
        HEALTH_TIMEOUT_MS,
      );
      timer.unref();
    });
    const result = await Promise.race([probe(), timeout]);
    return { kind, latencyMs: round(performance.now() - start), ...result };
  } catch (err) {
    return {
      ok: false,
      kind,
      latencyMs: round(performance.now() - start),
      detail: errorMessage(err),
      vector: fallbackVector,
    };
  } finally {
    clearTimeout(timer);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
