/**
 * grpc.health.v1 and grpc.reflection.v1 as a route module: health reports every
 * agentgate service; reflection describes them so `buf curl --list-services` and
 * schema-less calls work.
 */
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { file_agentgate_v1_agent_service } from "../../gen/agentgate/v1/agent_service_pb.js";
import { file_agentgate_v1_completion_service } from "../../gen/agentgate/v1/completion_service_pb.js";
import { file_agentgate_v1_endpoint_service } from "../../gen/agentgate/v1/endpoint_service_pb.js";
import { file_agentgate_v1_job_service } from "../../gen/agentgate/v1/job_service_pb.js";
import { file_agentgate_v1_search_service } from "../../gen/agentgate/v1/search_service_pb.js";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import type { RouteModule } from "../server/app.js";
import { registerHealth, type HealthRegistry } from "./health.js";
import { registerReflection } from "./reflection.js";

const FILES = [
  file_agentgate_v1_completion_service,
  file_agentgate_v1_agent_service,
  file_agentgate_v1_job_service,
  file_agentgate_v1_search_service,
  file_agentgate_v1_endpoint_service,
  file_grpc_health_v1_health,
];

export function grpcServiceModule(health: HealthRegistry, serviceNames: string[]): RouteModule {
  return {
    services: [Health.typeName, ServerReflection.typeName],
    rpc(router) {
      registerHealth(router, health);
      registerReflection(router, FILES, [...serviceNames, Health.typeName]);
    },
  };
}
