/**
 * The search index's tables (migration 0007): files with their content hash, chunks with their
 * full-text lexemes, symbols. A file's rows are replaced in one transaction (replaceFile), so readers
 * see a file's old or new version, never a mix.
 */
import type { Database, Queryable } from "../../storage/database.js";
import type { CodeSymbolInfo } from "../symbols/types.js";
import { chunkLexemeText } from "./lexemes.js";

export interface IndexedChunk {
  id: string;
  startLine: number;
  endLine: number;
  /** The declaration the chunk covers (outermost), "" when none. */
  symbol: string;
  content: string;
}

export interface IndexedFile {
  root: string;
  path: string;
  sha256: string;
  sizeBytes: number;
  modifiedAt?: Date;
  language: string;
  /** Why it has no chunks (binary, too large ...); "" when indexed. */
  error: string;
}

export interface FileState {
  sha256: string;
  sizeBytes: number;
  modifiedAt?: Date;
  embedded: boolean;
  error: string;
}

export interface RootCounts {
  files: number;
  failed: number;
  chunks: number;
  embeddedChunks: number;
  symbols: number;
}

export interface StoredChunk {
  id: string;
  root: string;
  path: string;
  startLine: number;
  endLine: number;
  language: string;
  symbol: string;
  content: string;
}

/** Rows per multi-row INSERT (keeps statements far below the 65535-parameter limit). */
const INSERT_BATCH = 200;

export class IndexStore {
  constructor(private readonly db: Database) {}

  /** The indexed files of a root, by path. */
  async files(root: string): Promise<Map<string, FileState>> {
    const r = await this.db.query<{
      path: string;
      sha256: string;
      size_bytes: string | number;
      modified_at: Date | null;
      embedded: boolean;
      error: string;
    }>(`SELECT path, sha256, size_bytes, modified_at, embedded, error FROM search_files WHERE root = $1`, [root]);
    return new Map(
      r.rows.map((x) => [
        x.path,
        {
          sha256: x.sha256,
          sizeBytes: Number(x.size_bytes),
          modifiedAt: x.modified_at ?? undefined,
          embedded: x.embedded,
          error: x.error,
        },
      ]),
    );
  }

  async file(root: string, path: string): Promise<FileState | undefined> {
    const r = await this.db.query<{
      sha256: string;
      size_bytes: string | number;
      modified_at: Date | null;
      embedded: boolean;
      error: string;
    }>(`SELECT sha256, size_bytes, modified_at, embedded, error FROM search_files WHERE root = $1 AND path = $2`, [
      root,
      path,
    ]);
    const x = r.rows[0];
    return x
      ? {
          sha256: x.sha256,
          sizeBytes: Number(x.size_bytes),
          modifiedAt: x.modified_at ?? undefined,
          embedded: x.embedded,
          error: x.error,
        }
      : undefined;
  }

  /** Replaces everything indexed for the file (its chunks' vectors are the caller's: see Indexer). */
  async replaceFile(file: IndexedFile, chunks: IndexedChunk[], symbols: CodeSymbolInfo[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      await deleteRows(tx, file.root, file.path);
      await tx.query(
        `INSERT INTO search_files (root, path, sha256, size_bytes, modified_at, language, indexed_at,
           chunk_count, symbol_count, embedded, error)
         VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, false, $9)`,
        [
          file.root,
          file.path,
          file.sha256,
          file.sizeBytes,
          file.modifiedAt ?? null,
          file.language,
          chunks.length,
          symbols.length,
          file.error,
        ],
      );
      for (let i = 0; i < chunks.length; i += INSERT_BATCH) {
        const batch = chunks.slice(i, i + INSERT_BATCH);
        await tx.query(
          `INSERT INTO search_chunks (id, root, path, start_line, end_line, language, symbol, content, lexemes)
           SELECT c.id, $1, $2, c.s, c.e, $3, c.sym, c.content, to_tsvector('english', c.lex)
           FROM unnest($4::text[], $5::int[], $6::int[], $7::text[], $8::text[], $9::text[])
             AS c(id, s, e, sym, content, lex)`,
          [
            file.root,
            file.path,
            file.language,
            batch.map((c) => c.id),
            batch.map((c) => c.startLine),
            batch.map((c) => c.endLine),
            batch.map((c) => c.symbol),
            batch.map((c) => stripNul(c.content)),
            batch.map((c) => chunkLexemeText(file.path, c.content)),
          ],
        );
      }
      for (let i = 0; i < symbols.length; i += INSERT_BATCH) {
        const batch = symbols.slice(i, i + INSERT_BATCH);
        await tx.query(
          `INSERT INTO search_symbols (root, path, name, kind, start_line, end_line, signature, container, language)
           SELECT $1, $2, s.name, s.kind, s.sl, s.el, s.sig, s.container, s.lang
           FROM unnest($3::text[], $4::int[], $5::int[], $6::int[], $7::text[], $8::text[], $9::text[])
             AS s(name, kind, sl, el, sig, container, lang)`,
          [
            file.root,
            file.path,
            batch.map((s) => s.name),
            batch.map((s) => s.kind),
            batch.map((s) => s.startLine),
            batch.map((s) => s.endLine),
            batch.map((s) => stripNul(s.signature)),
            batch.map((s) => s.container),
            batch.map((s) => s.language),
          ],
        );
      }
    });
  }

  /** Same content, new size/mtime record (so the next scan's fast path skips the file). */
  async touch(root: string, path: string, modifiedAt: Date, sizeBytes: number): Promise<void> {
    await this.db.query(`UPDATE search_files SET modified_at = $3, size_bytes = $4 WHERE root = $1 AND path = $2`, [
      root,
      path,
      modifiedAt,
      sizeBytes,
    ]);
  }

  /** Planner statistics of the index tables (and the database's other tables: vectors included). */
  async analyze(): Promise<void> {
    await this.db.query("ANALYZE");
  }

  async removeFile(root: string, path: string): Promise<void> {
    await this.db.transaction((tx) => deleteRows(tx, root, path));
  }

  async markEmbedded(root: string, path: string, sha256: string): Promise<void> {
    // Only the version that was embedded: a newer one replaced meanwhile stays unembedded.
    await this.db.query(`UPDATE search_files SET embedded = true WHERE root = $1 AND path = $2 AND sha256 = $3`, [
      root,
      path,
      sha256,
    ]);
  }

  /** Files of a root whose chunks have no vectors yet (embedding was unavailable, or a crash). */
  async unembeddedFiles(root: string, limit: number): Promise<string[]> {
    const r = await this.db.query<{ path: string }>(
      `SELECT path FROM search_files WHERE root = $1 AND NOT embedded AND chunk_count > 0 ORDER BY path LIMIT $2`,
      [root, limit],
    );
    return r.rows.map((x) => x.path);
  }

  async chunksOf(root: string, path: string): Promise<StoredChunk[]> {
    const r = await this.db.query<ChunkRow>(
      `SELECT ${CHUNK_COLUMNS} FROM search_chunks WHERE root = $1 AND path = $2 ORDER BY start_line`,
      [root, path],
    );
    return r.rows.map(toChunk);
  }

  async chunksById(ids: string[]): Promise<Map<string, StoredChunk>> {
    if (ids.length === 0) return new Map();
    const r = await this.db.query<ChunkRow>(`SELECT ${CHUNK_COLUMNS} FROM search_chunks WHERE id = ANY($1::text[])`, [
      ids,
    ]);
    return new Map(r.rows.map((x) => [x.id, toChunk(x)]));
  }

  async counts(root: string): Promise<RootCounts> {
    const r = await this.db.query<{
      files: string;
      failed: string;
      chunks: string | null;
      embedded: string | null;
      symbols: string | null;
    }>(
      `SELECT count(*) AS files, count(*) FILTER (WHERE error <> '') AS failed, sum(chunk_count) AS chunks,
              sum(chunk_count) FILTER (WHERE embedded) AS embedded, sum(symbol_count) AS symbols
       FROM search_files WHERE root = $1`,
      [root],
    );
    const x = r.rows[0]!;
    return {
      files: Number(x.files),
      failed: Number(x.failed),
      chunks: Number(x.chunks ?? 0),
      embeddedChunks: Number(x.embedded ?? 0),
      symbols: Number(x.symbols ?? 0),
    };
  }

  /** The raw rows FindSymbols ranks: names containing the query's characters in order (case-insensitive). */
  async symbolCandidates(
    roots: string[],
    o: { likePattern: string; kinds: number[]; language: string; limit: number },
  ): Promise<(CodeSymbolInfo & { root: string })[]> {
    const r = await this.db.query<{
      root: string;
      path: string;
      name: string;
      kind: number;
      start_line: number;
      end_line: number;
      signature: string;
      container: string;
      language: string;
    }>(
      `SELECT root, path, name, kind, start_line, end_line, signature, container, language
       FROM search_symbols
       WHERE root = ANY($1::text[]) AND lower(name) LIKE $2 ESCAPE '\\'
         AND (cardinality($3::int[]) = 0 OR kind = ANY($3::int[]))
         AND ($4 = '' OR language = $4)
       LIMIT $5`,
      [roots, o.likePattern, o.kinds, o.language, o.limit],
    );
    return r.rows.map((x) => ({
      root: x.root,
      path: x.path,
      name: x.name,
      kind: x.kind,
      startLine: x.start_line,
      endLine: x.end_line,
      signature: x.signature,
      container: x.container,
      language: x.language,
    }));
  }
}

/** A search_chunks row as selected with CHUNK_COLUMNS. */
export type ChunkRow = {
  id: string;
  root: string;
  path: string;
  start_line: number;
  end_line: number;
  language: string;
  symbol: string;
  content: string;
};
export const CHUNK_COLUMNS = "id, root, path, start_line, end_line, language, symbol, content";
export const toChunk = (x: ChunkRow): StoredChunk => ({
  id: x.id,
  root: x.root,
  path: x.path,
  startLine: x.start_line,
  endLine: x.end_line,
  language: x.language,
  symbol: x.symbol,
  content: x.content,
});

/** Runs first in every transaction that replaces or removes a file's rows. */
async function deleteRows(q: Queryable, root: string, path: string): Promise<void> {
  // Replicas sharing a database watch the same roots and may index one file at once. The lock
  // serialises them; under READ COMMITTED each later statement sees the other's committed rows, so
  // the second replaces them instead of failing on search_files' primary key.
  await q.query(`SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))`, [root, path]);
  await q.query(`DELETE FROM search_chunks WHERE root = $1 AND path = $2`, [root, path]);
  await q.query(`DELETE FROM search_symbols WHERE root = $1 AND path = $2`, [root, path]);
  await q.query(`DELETE FROM search_files WHERE root = $1 AND path = $2`, [root, path]);
}

/** Postgres text cannot hold NUL. */
const stripNul = (s: string) => (s.includes("\0") ? s.replaceAll("\0", "") : s);
