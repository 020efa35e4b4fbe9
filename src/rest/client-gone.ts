import type { FastifyReply } from "fastify";
import { Cancellation, type CancelSignal } from "../util/cancel-signal.js";

/**
 * Cancels when the client goes away before the reply is sent (non-streaming calls). A
 * Cancellation, not an AbortController: see util/cancel-signal.ts.
 */
export function clientGone(reply: FastifyReply): CancelSignal {
  const gone = new Cancellation();
  // `on`, not `once`: the response closes once anyway, and once() wraps the listener per request.
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) gone.cancel(new Error("client disconnected"));
  });
  return gone;
}
