// grpc.health.v1.Health for Connect-ES (no official implementation exists:
// connectrpc/connect-es#797). Semantics follow
// https://github.com/grpc/grpc/blob/master/doc/health-checking.md:
// - Check: status of one service ("" = the whole server); unknown → NOT_FOUND.
// - List: a non-atomic snapshot of every known service.
// - Watch: the current status at once, then every change, until the client
//   cancels; unknown services report SERVICE_UNKNOWN (never an error).
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { HealthCheckRequest, HealthCheckResponse } from "../../gen/grpc/health/v1/health_pb.js";

export type HealthStatus = "SERVING" | "NOT_SERVING" | "UNKNOWN_SERVICE";

/** Where the health service reads statuses from. */
export interface HealthSource {
  /** Status of one service; "" is the server as a whole. */
  status(service: string): HealthStatus;
  /** Every service with a known status (included in List). */
  services(): string[];
  /** Call `listener` after any status change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

/**
 * A mutable in-memory HealthSource. The overall service "" starts SERVING;
 * other services are unknown until `set`.
 */
export class HealthRegistry implements HealthSource {
  readonly #statuses = new Map<string, boolean>([["", true]]);
  readonly #listeners = new Set<() => void>();

  constructor(initial: Record<string, boolean> = {}) {
    for (const [service, serving] of Object.entries(initial)) this.#statuses.set(service, serving);
  }

  /** Set one service's status ("" = overall). Listeners run only on a change. */
  set(service: string, serving: boolean): void {
    if (this.#statuses.get(service) === serving) return;
    this.#statuses.set(service, serving);
    this.#notify();
  }

  /** Forget a service: Check answers NOT_FOUND, Watch SERVICE_UNKNOWN. */
  remove(service: string): void {
    if (this.#statuses.delete(service)) this.#notify();
  }

  /** Mark every service NOT_SERVING, e.g. when draining before shutdown. */
  shutdown(): void {
    let changed = false;
    for (const [service, serving] of this.#statuses) {
      if (serving) {
        this.#statuses.set(service, false);
        changed = true;
      }
    }
    if (changed) this.#notify();
  }

  status(service: string): HealthStatus {
    const serving = this.#statuses.get(service);
    if (serving === undefined) return "UNKNOWN_SERVICE";
    return serving ? "SERVING" : "NOT_SERVING";
  }

  services(): string[] {
    return [...this.#statuses.keys()];
  }

  subscribe(listener: () => void): () => void {
    // Wrap so that subscribing the same function twice gives two independent subscriptions.
    const entry = () => listener();
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Number of active subscriptions (open Watch streams); for tests and metrics. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch {
        // A failing listener must not break the others or the caller of set().
      }
    }
  }
}

function toServingStatus(status: HealthStatus): ServingStatus {
  switch (status) {
    case "SERVING":
      return ServingStatus.SERVING;
    case "NOT_SERVING":
      return ServingStatus.NOT_SERVING;
    default:
      return ServingStatus.SERVICE_UNKNOWN;
  }
}

/** The grpc.health.v1.Health implementation over `source`. */
export function healthService(source: HealthSource): ServiceImpl<typeof Health> {
  return {
    check(req: HealthCheckRequest): HealthCheckResponse {
      const status = source.status(req.service);
      if (status === "UNKNOWN_SERVICE") {
        throw new ConnectError(`unknown service ${JSON.stringify(req.service)}`, Code.NotFound);
      }
      return create(HealthCheckResponseSchema, { status: toServingStatus(status) });
    },

    list() {
      const statuses: Record<string, HealthCheckResponse> = {};
      for (const service of source.services()) {
        const status = source.status(service);
        if (status === "UNKNOWN_SERVICE") continue;
        statuses[service] = create(HealthCheckResponseSchema, { status: toServingStatus(status) });
      }
      return create(HealthListResponseSchema, { statuses });
    },

    async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
      const { signal } = ctx;
      let changed = false;
      let wake: (() => void) | undefined;
      const unsubscribe = source.subscribe(() => {
        changed = true;
        wake?.();
      });
      const onAbort = () => wake?.();
      signal.addEventListener("abort", onAbort);
      try {
        let last: ServingStatus | undefined;
        while (!signal.aborted) {
          changed = false;
          const current = toServingStatus(source.status(req.service));
          if (current !== last) {
            last = current;
            yield create(HealthCheckResponseSchema, { status: current });
          }
          // A change may have arrived while the yield was suspended.
          if (!changed && !signal.aborted) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
          }
        }
      } finally {
        unsubscribe();
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}

/** Register grpc.health.v1.Health on `router`. */
export function registerHealth(router: ConnectRouter, source: HealthSource): void {
  router.service(Health, healthService(source));
}
