/**
 * Connect interceptors for every RPC: the shared bearer check and rate limit,
 * GatewayError -> Connect code mapping (unary and streams), and recording the
 * outcome so the per-request log line and metrics carry the RPC's code.
 */
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { asGatewayError, toConnectError } from "../errors/gateway-error.js";
import type { TokenAuth } from "../server/auth.js";
import { presentedToken } from "../server/auth.js";
import { RateLimiter } from "../server/rate-limiter.js";

/** Mutable per-call record shared with the Fastify request (see app.ts). */
export interface RpcOutcome {
  code: string;
  remoteAddress?: string;
}

export const rpcOutcomeKey = createContextKey<RpcOutcome | undefined>(undefined, { description: "rpc outcome" });

function codeName(code: Code): string {
  return Code[code].replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c.toLowerCase());
}

export function gatewayInterceptor(auth: TokenAuth, limiter: RateLimiter, log: Logger): Interceptor {
  const fail = (err: unknown, outcome: RpcOutcome | undefined): ConnectError => {
    const ce = toConnectError(err);
    if (outcome) outcome.code = codeName(ce.code);
    if (ce.code === Code.Internal || ce.code === Code.Unknown)
      log.error({ err: asGatewayError(err).cause ?? err }, "rpc failed");
    return ce;
  };
  return (next) => async (req) => {
    const outcome = req.contextValues.get(rpcOutcomeKey);
    try {
      auth.check(req.header);
      limiter.take(RateLimiter.callerKey(presentedToken(req.header), outcome?.remoteAddress));
    } catch (err) {
      throw fail(err, outcome);
    }
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      throw fail(err, outcome);
    }
    if (!res.stream) return res;
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } catch (err) {
          throw fail(err, outcome);
        }
      })(),
    };
  };
}
