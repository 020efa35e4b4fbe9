/** Builds the dreamed-endpoint domain from the configuration (the composition root calls this). */
import path from "node:path";
import type { Logger } from "pino";
import type { CallbackSender } from "../callbacks/callback-sender.js";
import type { Config } from "../config/config.js";
import type { JobManager } from "../jobs/job-manager.js";
import { endpointJson } from "../rpc/endpoint-convert.js";
import { SandboxedRunner } from "../sandbox/sandboxed-run.js";
import type { UidPool } from "../sandbox/uid-pool.js";
import { OllamaEmbedder } from "../search/embeddings.js";
import { VectorTargetProvider } from "../search/index/vector-target.js";
import { createVectorStore } from "../search/vectors/index.js";
import type { Database } from "../storage/database.js";
import type { SystemTools } from "../system/system-tools.js";
import { EndpointCatalog } from "./endpoint-catalog.js";
import { EndpointInvoker } from "./endpoint-invoker.js";
import { EndpointStore } from "./endpoint-store.js";
import { EndpointValidator } from "./endpoint-validator.js";
import { EndpointVectors } from "./endpoint-vectors.js";
import { DEFAULT_HANDLER_LIMITS, HandlerRunner } from "./handler-runner.js";
import { SchemaValidator } from "./openapi-check.js";

export interface EndpointDomain {
  catalog: EndpointCatalog;
  invoker: EndpointInvoker;
  store: EndpointStore;
  close(): Promise<void>;
}

export function openEndpoints(
  config: Config,
  deps: {
    db: Database;
    jobs: JobManager;
    callbacks?: CallbackSender;
    tools: SystemTools;
    uidPool: UidPool;
    /** Aborted when the server shuts down: open WatchEndpoint streams end with `unavailable`. */
    shutdown?: AbortSignal;
    logger?: Logger;
    /** How often the expiry/recovery sweep runs (tests). */
    sweepMs?: number;
  },
): EndpointDomain {
  const logger = deps.logger?.child({ component: "endpoints" });
  const store = new EndpointStore(deps.db);
  const vectorStore =
    config.qdrantUrl || deps.db.vector === "pgvector"
      ? createVectorStore({ db: deps.db, qdrantUrl: config.qdrantUrl, qdrantApiKey: config.qdrantApiKey })
      : undefined;
  const embedder = config.embedModel
    ? new OllamaEmbedder({ baseUrl: config.upstream, model: config.embedModel })
    : undefined;
  const target = new VectorTargetProvider({ embedder, store: vectorStore, logger, collectionPrefix: "endpoints" });
  const schemas = new SchemaValidator();
  const handlers = new HandlerRunner({
    runner: new SandboxedRunner({ tools: deps.tools, uidPool: deps.uidPool }),
    workRoot: path.join(config.dataDir, "endpoints", "calls"),
    traverse: [config.dataDir, path.join(config.dataDir, "endpoints")],
    hiddenPaths: [path.resolve(config.dataDir)],
  });
  const validator = new EndpointValidator({
    handlers,
    schemas,
    defaults: {
      timeoutMs: config.endpoints.handlerTimeoutMs,
      limits: DEFAULT_HANDLER_LIMITS,
      sandbox: config.endpoints.sandbox,
    },
  });
  const catalog = new EndpointCatalog({
    store,
    vectors: new EndpointVectors(target),
    jobs: deps.jobs,
    validator,
    schemas,
    callbacks: deps.callbacks,
    publicJson: (e) => endpointJson(e, false),
    similarityThreshold: config.endpoints.similarity,
    defaultTtlMs: config.endpoints.ttlSeconds * 1000,
    refreshAheadMs: config.endpoints.refreshAheadSeconds * 1000,
    handlerTimeoutMs: config.endpoints.handlerTimeoutMs,
    sweepMs: deps.sweepMs,
    shutdown: deps.shutdown,
    logger,
  });
  const invoker = new EndpointInvoker({ store, handlers, schemas });
  return {
    catalog,
    invoker,
    store,
    async close() {
      await catalog.close();
      await vectorStore?.close();
    },
  };
}
