/**
 * The embedding model and the vector collection, brought up lazily and retried: Ollama may start
 * after agentgate, or have the model pulled later. Until both work the index is lexical only, and
 * `unavailableReason` says why (SearchResponse.lexical_only_reason, GetIndexStatus).
 */
import type { Logger } from "pino";
import { GatewayError } from "../../errors/gateway-error.js";
import type { OllamaEmbedder } from "../embeddings.js";
import type { VectorStore } from "../vectors/vector-store.js";
import type { VectorTarget } from "./indexer.js";

/** After a failure, the next attempt waits this long (requests in between get the same answer). */
const RETRY_MS = 30_000;

export class VectorTargetProvider {
  private target?: VectorTarget;
  private reason = "not tried yet";
  private triedAt = 0;
  private attempt?: Promise<VectorTarget | undefined>;

  constructor(
    private readonly o: {
      embedder?: OllamaEmbedder;
      store?: VectorStore;
      logger?: Logger;
      now?: () => number;
      /** Collection name prefix (default "chunks"; dreamed endpoints use "endpoints"). */
      collectionPrefix?: string;
    },
  ) {
    if (!o.embedder) this.reason = "no embedding model is configured (EMBED_MODEL is empty)";
    else if (!o.store) this.reason = "no vector store is available";
  }

  /** Overrides the "not tried yet" reason when the composition knows vectors cannot work. */
  setReason(reason: string): void {
    this.reason = reason;
  }

  get model(): string {
    return this.o.embedder?.model ?? "";
  }

  /** The store's kind ("pgvector", "qdrant"), "" without one. */
  get storeKind(): string {
    return this.o.store?.kind ?? "";
  }

  /** Why there are no vectors right now; "" when there are. */
  get unavailableReason(): string {
    return this.target ? "" : this.reason;
  }

  get(): Promise<VectorTarget | undefined> {
    if (this.target) return Promise.resolve(this.target);
    const { embedder, store } = this.o;
    if (!embedder || !store) return Promise.resolve(undefined);
    const now = (this.o.now ?? Date.now)();
    if (this.attempt) return this.attempt;
    if (now - this.triedAt < RETRY_MS) return Promise.resolve(undefined);
    this.triedAt = now;
    this.attempt = (async () => {
      try {
        const probe = await embedder.probe();
        if (probe.status !== "ok") {
          this.reason = `embedding model ${embedder.model} unavailable: ${probe.message}`;
          return undefined;
        }
        const name = collectionName(embedder.model, this.o.collectionPrefix);
        const { collection } = await store.ensure(name, probe.dimensions, { onDimensionMismatch: "recreate" });
        this.target = { embedder, collection };
        this.o.logger?.info({ model: embedder.model, store: store.kind, collection: name }, "vector collection ready");
        return this.target;
      } catch (err) {
        this.reason = err instanceof GatewayError ? err.message : `vector store unavailable: ${(err as Error).message}`;
        this.o.logger?.warn({ err }, "search vectors unavailable; searching lexically");
        return undefined;
      } finally {
        this.attempt = undefined;
      }
    })();
    return this.attempt;
  }
}

/** One collection per embedding model: vectors of different models are not comparable. */
export function collectionName(model: string, prefix = "chunks"): string {
  const slug = model
    .toLowerCase()
    .replace(/:latest$/, "")
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  return `${prefix}_${slug || "default"}`.slice(0, 48);
}
