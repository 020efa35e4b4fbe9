/**
 * Picks the vector store: Qdrant when QDRANT_URL is set, pgvector in the agentgate database otherwise.
 * Choosing pgvector never fails here; `ensure()` throws failed_precondition when the database lacks it, so
 * the caller can fall back to lexical-only search and report why.
 */
import type { Database } from "../../storage/database.js";
import { PgvectorStore, type PgvectorStoreOptions } from "./pgvector-store.js";
import { QdrantStore } from "./qdrant-store.js";
import type { VectorStore } from "./vector-store.js";

export interface VectorStoreConfig {
  db: Database;
  /** QDRANT_URL */
  qdrantUrl?: string;
  /** QDRANT_API_KEY */
  qdrantApiKey?: string;
  pgvector?: PgvectorStoreOptions;
}

export function createVectorStore(config: VectorStoreConfig): VectorStore {
  if (config.qdrantUrl) return new QdrantStore({ url: config.qdrantUrl, apiKey: config.qdrantApiKey });
  return new PgvectorStore(config.db, config.pgvector);
}

export * from "./vector-store.js";
export { PgvectorStore, type PgvectorStoreOptions } from "./pgvector-store.js";
export { QdrantStore, type QdrantStoreOptions } from "./qdrant-store.js";
