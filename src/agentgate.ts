/**
 * The composition root: opens storage, builds backends and domain services,
 * assembles the app and owns start-up and graceful shutdown. Tests and benches
 * create a gateway through here exactly as `agentgate serve` does.
 */
import { randomUUID } from "node:crypto";
import os from "node:os";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { AgentService } from "../gen/agentgate/v1/agent_service_pb.js";
import { CompletionService } from "../gen/agentgate/v1/completion_service_pb.js";
import { EndpointService } from "../gen/agentgate/v1/endpoint_service_pb.js";
import { JobService } from "../gen/agentgate/v1/job_service_pb.js";
import { SearchService } from "../gen/agentgate/v1/search_service_pb.js";
import { AgentSupervisor } from "./agents/agent-supervisor.js";
import type { JobManager } from "./jobs/job-manager.js";
import { openJobs } from "./jobs/jobs-module.js";
import { openEndpoints, type EndpointDomain } from "./endpoints/endpoints-module.js";
import { endpointService } from "./rpc/endpoint-service.js";
import { registerDreamRoutes } from "./rest/endpoints/dream-routes.js";
import { registerEndpointRoutes } from "./rest/endpoints/endpoint-routes.js";
import { searchService } from "./rpc/search-service.js";
import { openSearch, type SearchDomain } from "./search/search-module.js";
import { openRetrieval } from "./retrieval/retrieval-module.js";
import { UidPool } from "./sandbox/uid-pool.js";
import { OllamaBackend } from "./backends/ollama-backend.js";
import { OpenAIBackend } from "./backends/openai-backend.js";
import { CodexBackend } from "./backends/codex/codex-backend.js";
import { CompletionGateway } from "./completion/completion-gateway.js";
import { GatewayError } from "./errors/gateway-error.js";
import { ModelRouter } from "./completion/model-router.js";
import type { Backend } from "./completion/types.js";
import type { Config } from "./config/config.js";
import { createLogger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { registerAgentRoutes } from "./rest/agents/routes.js";
import { registerCodexProxyRoutes } from "./rest/jobs/codex-proxy-routes.js";
import { registerGatewayRoutes } from "./rest/jobs/gateway-routes.js";
import { registerGatewaySessionRoutes } from "./rest/jobs/gateway-session-routes.js";
import { registerGatewayTriggerRoutes } from "./rest/jobs/gateway-trigger-routes.js";
import { registerOllamaRoutes } from "./rest/ollama/routes.js";
import { registerOpenAIRoutes } from "./rest/openai/routes.js";
import { registerResponsesRoutes } from "./rest/responses/routes.js";
import { registerOperationsRoutes } from "./rest/operations-routes.js";
import { agentService } from "./rpc/agent-service.js";
import { jobService } from "./rpc/job-service.js";
import { completionService } from "./rpc/completion-service.js";
import { grpcServiceModule } from "./rpc/grpc-services.js";
import { buildApp, type RouteModule } from "./server/app.js";
import { TokenAuth } from "./server/auth.js";
import { RateLimiter } from "./server/rate-limiter.js";
import { openDatabase, type Database } from "./storage/database.js";
import { registerInstance, heartbeatInstance, unregisterInstance } from "./storage/instances.js";
import { SystemTools } from "./system/system-tools.js";
import { HealthRegistry } from "./rpc/health.js";
import { VERSION } from "./version.js";

export interface AgentgateOptions {
  logger?: Logger;
  /** Use this database instead of opening one from the config (tests). */
  database?: Database;
  /** Use these backends instead of the configured ones (tests). */
  backends?: Backend[];
  /** Collect Node process metrics (off in tests to keep registries small). */
  processMetrics?: boolean;
}

export interface Agentgate {
  readonly app: FastifyInstance;
  readonly config: Config;
  readonly db: Database;
  readonly gateway: CompletionGateway;
  /** The agent domain (AgentService, and REST/WebSocket/CLI layers built on it). */
  readonly agents: AgentSupervisor;
  /** The job domain (JobService and the seed REST routes). */
  readonly jobs: JobManager;
  /** The search domain (SearchService): roots, index, indexer. */
  readonly search: SearchDomain;
  /** Dreamed endpoints (EndpointService, /endpoints, /dream/...). */
  readonly endpoints: EndpointDomain;
  readonly metrics: Metrics;
  readonly health: HealthRegistry;
  /** Listens on config.bind; resolves to the bound address (port 0 picks one). */
  listen(): Promise<{ host: string; port: number; url: string }>;
  /** Graceful: stop accepting, let streams finish within the grace period, end the rest, close storage. */
  close(): Promise<void>;
}

export function buildBackends(config: Config, deps: { db: Database; logger?: Logger }): Backend[] {
  return [
    new OllamaBackend({
      baseUrl: config.upstream,
      defaultNumCtx: config.ollamaNumCtx,
      firstByteTimeoutMs: config.upstreamTimeoutMs,
    }),
    ...config.backends.map(
      (b) =>
        new OpenAIBackend({
          name: b.name,
          baseUrl: b.baseUrl,
          apiKey: b.apiKey,
          firstByteTimeoutMs: config.upstreamTimeoutMs,
        }),
    ),
    new CodexBackend({
      bin: config.codex.bin,
      sandbox: config.codex.modelSandbox,
      models: config.codex.models,
      timeoutMs: config.codex.timeoutMs,
      workDir: `${config.dataDir}/codex-model`,
      db: deps.db,
      logger: deps.logger,
    }),
  ];
}

export async function createAgentgate(config: Config, options: AgentgateOptions = {}): Promise<Agentgate> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = new Metrics({ processMetrics: options.processMetrics });
  const db =
    options.database ?? (await openDatabase({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, logger }));
  const ownsDb = !options.database;
  const tools = new SystemTools();
  const router = new ModelRouter(options.backends ?? buildBackends(config, { db, logger }), "ollama", config.model);
  const gateway = new CompletionGateway(router, metrics, { model: config.model, embedModel: config.embedModel });
  const health = new HealthRegistry();
  const shutdown = new AbortController();
  const instanceId = randomUUID();
  const started = Date.now();
  // One pool for agents and jobs: no two live sandboxes ever share a uid.
  const uidPool = new UidPool();
  const agents = await AgentSupervisor.open({
    db,
    dataDir: config.dataDir,
    instanceId,
    tools,
    ringBytes: config.agents.maxLogBytes,
    logFileMaxBytes: config.agents.logFileMaxBytes,
    defaultSandbox: tools.path("bwrap") ? "bwrap" : "none",
    codexBin: config.codex.bin,
    // A Codex agent in the sandbox calls this agentgate back with them.
    authToken: config.authToken,
    defaultModel: config.model,
    uidPool,
    logger,
  });
  const { jobs, callbacks, sessions, triggers } = await openJobs(config, { db, instanceId, logger, uidPool, tools });
  const search = await openSearch(config, { db, tools, logger });
  const retrieval = openRetrieval({ gateway, search, db, logger });
  const endpoints = openEndpoints(config, { db, jobs, callbacks, tools, uidPool, shutdown: shutdown.signal, logger });

  const completionModule: RouteModule = {
    services: [
      CompletionService.typeName,
      AgentService.typeName,
      JobService.typeName,
      SearchService.typeName,
      EndpointService.typeName,
    ],
    rest: async (app) => {
      await registerOpenAIRoutes(app, {
        gateway,
        retrievalChat: retrieval.retrievalChat,
        metrics,
        shutdown: shutdown.signal,
        catalog: { maxContextWindow: config.ollamaNumCtx, defaultModel: config.model },
      });
      await registerResponsesRoutes(app, {
        gateway,
        metrics,
        shutdown: shutdown.signal,
        heartbeatMs: config.responsesHeartbeatMs,
      });
      await registerOllamaRoutes(app, { gateway, metrics, shutdown: shutdown.signal });
      await registerAgentRoutes(app, { supervisor: agents, metrics, shutdown: shutdown.signal });
      await registerCodexProxyRoutes(app, { jobs });
      await registerGatewayRoutes(app, { jobs });
      await registerGatewaySessionRoutes(app, { jobs, sessions });
      await registerGatewayTriggerRoutes(app, { jobs, triggers });
      await registerEndpointRoutes(app, { catalog: endpoints.catalog });
      await registerDreamRoutes(app, { invoker: endpoints.invoker, store: endpoints.store });
    },
    rpc: (r) => {
      r.service(CompletionService, completionService({ gateway, ...retrieval, metrics }));
      r.service(JobService, jobService(jobs, sessions, triggers));
      r.service(SearchService, searchService(search));
      r.service(EndpointService, endpointService(endpoints.catalog));
      // Terminal output goes out uncompressed: gzip of every small, latency-bound output frame cost
      // more CPU on both ends than it saved on loopback (bench/agents). Compressed requests are
      // still accepted.
      r.service(AgentService, agentService(agents, { messageLimitBytes: config.rpcMessageLimitBytes }), {
        compressMinBytes: Number.MAX_SAFE_INTEGER,
      });
    },
  };
  const serviceNames = completionModule.services!;
  for (const name of serviceNames) health.set(name, true);

  const app = await buildApp({
    logger,
    metrics,
    auth: new TokenAuth(config.authToken),
    limiter: new RateLimiter(config.rateLimitRpm),
    bodyLimitBytes: config.bodyLimitBytes,
    rpcMessageLimitBytes: config.rpcMessageLimitBytes,
    shutdown: shutdown.signal,
    version: VERSION,
    publicRoutes: (a) =>
      registerOperationsRoutes(a, {
        db,
        backends: router.backends,
        tools,
        version: VERSION,
        startedAt: started,
        instanceId,
      }),
    modules: [completionModule, grpcServiceModule(health, serviceNames)],
  });

  let heartbeat: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;

  return {
    app,
    config,
    db,
    gateway,
    agents,
    jobs,
    search,
    endpoints,
    metrics,
    health,
    async listen() {
      await app.listen({ host: config.bind.host, port: config.bind.port });
      const addr = app.server.address();
      const port = typeof addr === "object" && addr ? addr.port : config.bind.port;
      const host = config.bind.host.includes(":") ? `[${config.bind.host}]` : config.bind.host;
      const url = `http://${host}:${port}`;
      const address = `${host === "0.0.0.0" || host === "[::]" ? os.hostname() : host}:${port}`;
      await registerInstance(db, { id: instanceId, address, version: VERSION });
      agents.setReplicaAddress(address);
      jobs.setReplicaAddress(address);
      heartbeat = setInterval(() => void heartbeatInstance(db, instanceId).catch(() => undefined), 15_000);
      heartbeat.unref();
      logger.info(
        { url, instanceId, database: db.kind, auth: config.authToken ? "token" : "off" },
        "agentgate listening",
      );
      return { host: config.bind.host, port, url };
    },
    close() {
      closing ??= (async () => {
        health.shutdown();
        clearInterval(heartbeat);
        // Let open streams finish within the grace period, then end them with an error frame,
        // then cut whatever is still connected.
        // A GatewayError reason, so RPC streams end with `unavailable` (retryable), as SSE streams do,
        // instead of being reported as a caller that went away.
        const grace = setTimeout(
          () => shutdown.abort(new GatewayError("unavailable", "the server is shutting down; retry the request")),
          config.shutdownGraceMs,
        );
        const force = setTimeout(() => {
          const server = app.server as unknown as { closeAllConnections?: () => void };
          server.closeAllConnections?.();
        }, config.shutdownGraceMs + 2_000);
        // Ending the agents ends their Attach and WatchLogs streams (exit frame), so app.close()
        // need not wait for the grace period on them.
        const agentsClosed = agents.close();
        const jobsClosed = triggers
          .close()
          .then(() => endpoints.close())
          .then(() => jobs.close())
          .finally(() => callbacks.close());
        try {
          await app.close();
        } finally {
          clearTimeout(grace);
          clearTimeout(force);
          await agentsClosed.catch((err: unknown) => logger.error({ err }, "closing the agent supervisor failed"));
          await jobsClosed.catch((err: unknown) => logger.error({ err }, "closing the job manager failed"));
          await search.close().catch((err: unknown) => logger.error({ err }, "closing the search index failed"));
          await unregisterInstance(db, instanceId).catch(() => undefined);
          if (ownsDb) await db.close();
        }
      })();
      return closing;
    },
  };
}
