/** What endpoint tests call a gateway with: authenticated REST calls, and a watch until settled. */
import type { EndpointStatus, Endpoint } from "../../gen/agentgate/v1/endpoint_service_pb.js";
import type { AgentgateClients } from "../../clients/index.js";

export interface RestAnswer {
  status: number;
  headers: Headers;
  // Test assertions index into arbitrary JSON.
  body: any;
}

/** A JSON REST caller with the bearer token. */
export function restCaller(baseUrl: () => string, token: string) {
  return async (method: string, url: string, body?: unknown): Promise<RestAnswer> => {
    const res = await fetch(`${baseUrl()}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
}

/** WatchEndpoint with until_settled: every status seen, in order, and the last record. */
export async function settle(
  ag: AgentgateClients,
  id: string,
  timeoutMs = 30_000,
): Promise<{ statuses: EndpointStatus[]; endpoint: Endpoint }> {
  const statuses: EndpointStatus[] = [];
  let last: Endpoint | undefined;
  for await (const frame of ag.endpoints.watchEndpoint({ endpointId: id, untilSettled: true }, { timeoutMs })) {
    last = frame.endpoint!;
    if (statuses.at(-1) !== last.status) statuses.push(last.status);
  }
  return { statuses, endpoint: last! };
}
