/**
 * /healthz: the only route without auth. Reports the database, every backend
 * and the optional system tools. 200 while the database answers (backends down
 * make it "degraded", still 200: the gateway itself serves); 503 otherwise.
 * Backend probes are cached for a few seconds so frequent probing never
 * multiplies upstream load.
 */
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { Backend, BackendHealth } from "../completion/types.js";
import type { Database } from "../storage/database.js";
import type { SystemTools } from "../system/system-tools.js";

export interface OperationsDeps {
  db: Database;
  backends: Backend[];
  tools: SystemTools;
  version: string;
  startedAt: number;
  instanceId: string;
}

const PROBE_TIMEOUT_MS = 2_000;
const PROBE_CACHE_MS = 5_000;

const HealthReport = Type.Object({
  status: Type.String({ enum: ["ok", "degraded", "unavailable"] }),
  version: Type.String(),
  instance: Type.String(),
  uptime_s: Type.Number(),
  database: Type.Object({
    ok: Type.Boolean(),
    kind: Type.String(),
    latency_ms: Type.Number(),
    vector: Type.String(),
    detail: Type.Optional(Type.String()),
  }),
  backends: Type.Array(
    Type.Object({
      name: Type.String(),
      kind: Type.String(),
      ok: Type.Boolean(),
      latency_ms: Type.Number(),
      detail: Type.String(),
    }),
  ),
  tools: Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()])),
});

export async function registerOperationsRoutes(app: FastifyInstance, deps: OperationsDeps): Promise<void> {
  let cached: { at: number; value: Promise<BackendHealth[]> } | undefined;
  const probeBackends = () => {
    if (!cached || Date.now() - cached.at > PROBE_CACHE_MS) {
      cached = {
        at: Date.now(),
        value: Promise.all(deps.backends.map((b) => b.health(AbortSignal.timeout(PROBE_TIMEOUT_MS)))),
      };
    }
    return cached.value;
  };

  app.get(
    "/healthz",
    {
      schema: {
        tags: ["operations"],
        summary: "Liveness and dependency report (no auth)",
        security: [],
        response: { 200: HealthReport, 503: HealthReport },
      },
    },
    async (_request, reply) => {
      const [database, backends] = await Promise.all([deps.db.health(), probeBackends()]);
      const status = !database.ok ? "unavailable" : backends.every((b) => b.ok) ? "ok" : "degraded";
      reply.code(database.ok ? 200 : 503);
      return {
        status,
        version: deps.version,
        instance: deps.instanceId,
        uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
        database: {
          ok: database.ok,
          kind: database.kind,
          latency_ms: round(database.latencyMs),
          vector: database.vector,
          detail: database.detail,
        },
        backends: deps.backends.map((b, i) => ({
          name: b.name,
          kind: b.kind,
          ok: backends[i]!.ok,
          latency_ms: round(backends[i]!.latencyMs),
          detail: backends[i]!.detail,
        })),
        tools: deps.tools.report(),
      };
    },
  );
}

const round = (ms: number) => Math.round(ms * 10) / 10;
