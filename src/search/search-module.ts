/** Builds the search domain from the configuration (the composition root calls this). */
import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import type { Database } from "../storage/database.js";
import type { SystemTools } from "../system/system-tools.js";
import { OllamaEmbedder } from "./embeddings.js";
import { HybridSearch } from "./index/hybrid-search.js";
import { IndexStore } from "./index/index-store.js";
import { Indexer } from "./index/indexer.js";
import { LexicalSearch } from "./index/lexical-search.js";
import { SymbolFinder } from "./index/symbol-finder.js";
import { VectorTargetProvider } from "./index/vector-target.js";
import { SearchRoots } from "./roots.js";
import { createVectorStore } from "./vectors/index.js";
import type { VectorStore } from "./vectors/vector-store.js";
import type { WriteOptions } from "./write/types.js";

export interface SearchDomain {
  roots: SearchRoots;
  store: IndexStore;
  indexer: Indexer;
  search: HybridSearch;
  symbols: SymbolFinder;
  vectors: VectorTargetProvider;
  tools: SystemTools;
  /** WriteFile/ApplyPatch settings; written files are queued for re-indexing at once. */
  writeOptions: WriteOptions;
  close(): Promise<void>;
}

export async function openSearch(
  config: Config,
  deps: { db: Database; tools: SystemTools; logger?: Logger; fetch?: typeof fetch },
): Promise<SearchDomain> {
  const roots = await SearchRoots.create(config.searchRoots);
  const store = new IndexStore(deps.db);
  const lexical = new LexicalSearch(deps.db);
  let vectorStore: VectorStore | undefined;
  // pgvector lives in the database; a Postgres server without it and without QDRANT_URL searches lexically.
  if (config.qdrantUrl || deps.db.vector === "pgvector")
    vectorStore = createVectorStore({ db: deps.db, qdrantUrl: config.qdrantUrl, qdrantApiKey: config.qdrantApiKey });
  const embedder = config.embedModel
    ? new OllamaEmbedder({ baseUrl: config.upstream, model: config.embedModel, fetch: deps.fetch })
    : undefined;
  const vectors = new VectorTargetProvider({ embedder, store: vectorStore, logger: deps.logger });
  if (vectorStore === undefined && embedder)
    vectors.setReason(
      "the database has no pgvector and QDRANT_URL is unset: set QDRANT_URL, or install pgvector in the Postgres server",
    );
  const indexer = new Indexer({
    roots,
    store,
    vectors: () => vectors.get(),
    watch: config.searchWatch,
    onChange: () => lexical.invalidate(),
    logger: deps.logger?.child({ component: "search-index" }),
  });
  if (config.searchWatch) indexer.start();
  const writeOptions: WriteOptions = {
    writeEnabled: config.searchWrite,
    onChange: (change) => {
      const root = roots.list().find((r) => r.name === change.root || r.dir === change.root);
      if (root)
        void indexer
          .reindex(
            root,
            change.paths.map((p) => p.path),
          )
          .catch(() => undefined);
    },
  };
  return {
    roots,
    store,
    indexer,
    search: new HybridSearch({ store, lexical, vectors }),
    symbols: new SymbolFinder(store),
    vectors,
    tools: deps.tools,
    writeOptions,
    async close() {
      await indexer.close();
      await vectorStore?.close();
    },
  };
}
