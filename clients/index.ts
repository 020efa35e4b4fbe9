/**
 * The typed client package internal callers import:
 *
 *   import { createAgentgateClients } from "agentgate/client";
 *   const ag = createAgentgateClients({ baseUrl: "http://127.0.0.1:3210", token: process.env.AUTH_TOKEN });
 *   const res = await ag.completion.chat({ model: "qwen3:8b", messages: [{ role: Role.USER, content: "hi" }] });
 *
 * HTTP/2 (the default) carries every RPC kind, bidirectional streams included;
 * HTTP/1.1 carries unary and server-streaming calls (use WatchLogs + SendInput
 * instead of Attach there).
 */
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AgentService } from "../gen/agentgate/v1/agent_service_pb.js";
import { CompletionService } from "../gen/agentgate/v1/completion_service_pb.js";
import { EndpointService } from "../gen/agentgate/v1/endpoint_service_pb.js";
import { JobService } from "../gen/agentgate/v1/job_service_pb.js";
import { SearchService } from "../gen/agentgate/v1/search_service_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";

export interface AgentgateClientOptions {
  /** e.g. http://127.0.0.1:3210 */
  baseUrl: string;
  /** AUTH_TOKEN of the server, sent as `Authorization: Bearer`. */
  token?: string;
  /** "2" (default, h2c for http:// URLs) or "1.1" (no bidi). */
  httpVersion?: "1.1" | "2";
  /** Wire protocol: "connect" (default), "grpc" (HTTP/2 only) or "grpc-web". */
  protocol?: "connect" | "grpc" | "grpc-web";
  /** Binary protobuf (default) or JSON on the wire. */
  useBinaryFormat?: boolean;
  /** Extra interceptors, run after the auth header is set. */
  interceptors?: Interceptor[];
}

export interface AgentgateClients {
  completion: Client<typeof CompletionService>;
  agents: Client<typeof AgentService>;
  jobs: Client<typeof JobService>;
  search: Client<typeof SearchService>;
  endpoints: Client<typeof EndpointService>;
  health: Client<typeof Health>;
  transport: Transport;
}

export function bearerInterceptor(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

export function createAgentgateTransport(opts: AgentgateClientOptions): Transport {
  const interceptors = [...(opts.token ? [bearerInterceptor(opts.token)] : []), ...(opts.interceptors ?? [])];
  const useBinaryFormat = opts.useBinaryFormat ?? true;
  const protocol = opts.protocol ?? "connect";
  if (protocol === "grpc") {
    if (opts.httpVersion === "1.1")
      throw new Error("gRPC needs HTTP/2; use protocol connect or grpc-web over HTTP/1.1");
    return createGrpcTransport({ baseUrl: opts.baseUrl, interceptors, useBinaryFormat });
  }
  const common = { baseUrl: opts.baseUrl, interceptors, useBinaryFormat };
  const create = protocol === "grpc-web" ? createGrpcWebTransport : createConnectTransport;
  return opts.httpVersion === "1.1"
    ? create({ ...common, httpVersion: "1.1" })
    : create({ ...common, httpVersion: "2" });
}

/** One call builds typed clients for every agentgate service over one transport. */
export function createAgentgateClients(opts: AgentgateClientOptions): AgentgateClients {
  const transport = createAgentgateTransport(opts);
  return {
    completion: createClient(CompletionService, transport),
    agents: createClient(AgentService, transport),
    jobs: createClient(JobService, transport),
    search: createClient(SearchService, transport),
    endpoints: createClient(EndpointService, transport),
    health: createClient(Health, transport),
    transport,
  };
}

export * from "../gen/agentgate/v1/completion_service_pb.js";
export * from "../gen/agentgate/v1/agent_service_pb.js";
export * from "../gen/agentgate/v1/job_service_pb.js";
export * from "../gen/agentgate/v1/search_service_pb.js";
export * from "../gen/agentgate/v1/endpoint_service_pb.js";
export { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
