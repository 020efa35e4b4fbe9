/**
 * EndpointService RPC handlers: translate, delegate to the EndpointCatalog (src/endpoints/),
 * translate back. Errors become Connect codes in the error interceptor.
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  DeleteEndpointResponseSchema,
  DreamEndpointResponseSchema,
  GetEndpointResponseSchema,
  ListEndpointsResponseSchema,
  WatchEndpointResponseSchema,
  type EndpointService,
  type WatchEndpointResponse,
} from "../../gen/agentgate/v1/endpoint_service_pb.js";
import type { EndpointCatalog } from "../endpoints/endpoint-catalog.js";
import { pbEndpoint, toDreamRequest, toListQuery } from "./endpoint-convert.js";

export function endpointService(catalog: EndpointCatalog): ServiceImpl<typeof EndpointService> {
  return {
    async dreamEndpoint(request) {
      const endpoint = await catalog.dream(toDreamRequest(request));
      return create(DreamEndpointResponseSchema, { endpoint: pbEndpoint(endpoint, true) });
    },
    async getEndpoint(request) {
      return create(GetEndpointResponseSchema, { endpoint: pbEndpoint(await catalog.get(request.endpointId), true) });
    },
    async listEndpoints(request) {
      const page = await catalog.list(toListQuery(request));
      return create(ListEndpointsResponseSchema, {
        endpoints: page.endpoints.map((e) => pbEndpoint(e, false)),
        nextPageToken: page.nextPageToken,
      });
    },
    async *watchEndpoint(request, ctx): AsyncIterable<WatchEndpointResponse> {
      for await (const e of catalog.watch(request.endpointId, request.untilSettled, ctx.signal))
        yield create(WatchEndpointResponseSchema, { endpoint: pbEndpoint(e, true) });
    },
    async deleteEndpoint(request) {
      await catalog.delete(request.endpointId);
      return create(DeleteEndpointResponseSchema, {});
    },
  };
}
