/**
 * Ollama's streaming format: application/x-ndjson, one JSON object a line, over Fastify (HTTP/1.1
 * and HTTP/2 alike). The NDJSON counterpart of rest/sse.ts, with Ollama's framing: no terminator
 * line, and a failure after the 200 is a last `{"error":"..."}` line (docs/api/errors.mdx).
 *
 * As in Ollama (gin sends the headers with the first line), the 200 goes out only with the first
 * event, so failures before it (unknown model, upstream down) keep their HTTP status. Writes wait
 * for drain: a slow client slows the upstream read instead of growing a buffer.
 */
import { once } from "node:events";
import { PassThrough } from "node:stream";
import type { FastifyReply } from "fastify";
import { asGatewayError, GatewayError } from "../../errors/gateway-error.js";
import { ClientDisconnected } from "../sse.js";
import type { EventSink } from "../pipe-events.js";

/**
 * Aborts when the client goes away before the reply is complete (the upstream call is then
 * cancelled), or when the shutdown grace period ends.
 */
export function replySignal(reply: FastifyReply, shutdown: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const onShutdown = () =>
    controller.abort(new GatewayError("unavailable", "the server is shutting down; retry the request"));
  shutdown.addEventListener("abort", onShutdown, { once: true });
  reply.raw.once("close", () => {
    shutdown.removeEventListener("abort", onShutdown);
    if (!reply.raw.writableFinished) controller.abort(new ClientDisconnected("client disconnected"));
  });
  return controller.signal;
}

export class NdjsonStream implements EventSink {
  private readonly body = new PassThrough();
  private opened = false;
  private ended = false;

  constructor(
    private readonly reply: FastifyReply,
    readonly signal: AbortSignal,
  ) {}

  /** Sends the 200 and the NDJSON headers. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.reply.header("content-type", "application/x-ndjson");
    this.reply.header("cache-control", "no-cache");
    this.reply.header("x-accel-buffering", "no");
    this.reply.code(200).send(this.body);
  }

  /** Writes one line; resolves once the socket can take more. */
  async send(value: unknown): Promise<void> {
    if (this.ended || this.signal.aborted) return;
    if (!this.body.write(`${JSON.stringify(value)}\n`)) {
      await once(this.body, "drain", { signal: this.signal }).catch(() => undefined);
    }
  }

  /** Ends the stream; a failure becomes a last `{"error"}` line, unless the client has gone. */
  finish(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const reason: unknown = this.signal.reason;
    // Written directly, not through send(): after a shutdown abort send() would drop it, and the
    // client would see a stream that just stops.
    if (err !== undefined && !(reason instanceof ClientDisconnected)) {
      const failure = asGatewayError(reason instanceof GatewayError ? reason : err);
      // The 200 is long gone, so the access log says nothing of this failure: log it here.
      if (failure.kind === "internal") this.reply.log.error({ err }, "stream failed");
      else this.reply.log.warn({ error: failure.message }, "stream failed");
      if (!this.body.destroyed) this.body.write(`${JSON.stringify({ error: failure.message })}\n`);
    }
    if (!this.body.destroyed) this.body.end();
  }
}
