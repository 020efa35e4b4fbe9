/**
 * Prometheus metrics (prom-client) on a registry per app instance, so several
 * gateways in one process (tests, benches) never collide.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: "agentgate_requests_total",
    help: "Requests served, by protocol, route and status",
    labelNames: ["protocol", "route", "status"] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: "agentgate_request_duration_seconds",
    help: "Time from request to the end of the response (whole stream for streams)",
    labelNames: ["protocol", "route"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: "agentgate_upstream_duration_seconds",
    help: "Time spent in upstream calls, by backend and operation",
    labelNames: ["backend", "operation"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: "agentgate_upstream_errors_total",
    help: "Failed upstream calls, by backend, operation and error kind",
    labelNames: ["backend", "operation", "kind"] as const,
    registers: [this.registry],
  });

  readonly activeStreams = new Gauge({
    name: "agentgate_active_streams",
    help: "Streaming responses in progress (SSE and RPC server streams)",
    labelNames: ["protocol"] as const,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: "agentgate_rate_limited_total",
    help: "Requests refused by RATE_LIMIT_RPM",
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "agentgate_" });
  }

  /** Tracks one stream from start to end; call the returned function exactly once. */
  streamStarted(protocol: string): () => void {
    this.activeStreams.inc({ protocol });
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.activeStreams.dec({ protocol });
    };
  }
}
