/**
 * A text/event-stream response over Fastify (HTTP/1.1 and HTTP/2 alike).
 *
 * `signal` aborts when the client goes away or the server's shutdown grace ends,
 * so the producer stops and the upstream request is cancelled. The stream is
 * opened only once the first event is at hand (`open`), so failures before it
 * (unknown model, upstream down) keep their HTTP status. Writes wait for drain:
 * a slow client slows the upstream read instead of growing a buffer.
 */
import { once } from "node:events";
import { PassThrough } from "node:stream";
import type { FastifyReply } from "fastify";
import { GatewayError, toOpenAIError } from "../errors/gateway-error.js";

export class ClientDisconnected extends Error {
  override readonly name = "ClientDisconnected";
}

export class SseStream {
  readonly body = new PassThrough();
  private readonly controller = new AbortController();
  private opened = false;
  private ended = false;
  private readonly cleanup: () => void;

  constructor(
    private readonly reply: FastifyReply,
    shutdown?: AbortSignal,
  ) {
    const onClose = () => {
      if (!this.ended && !reply.raw.writableFinished)
        this.controller.abort(new ClientDisconnected("client disconnected"));
    };
    reply.raw.once("close", onClose);
    const onShutdown = () =>
      this.controller.abort(new GatewayError("unavailable", "the server is shutting down; retry the request"));
    shutdown?.addEventListener("abort", onShutdown, { once: true });
    this.cleanup = () => shutdown?.removeEventListener("abort", onShutdown);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** Sends the 200 and the event-stream headers. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.reply.header("content-type", "text/event-stream; charset=utf-8");
    this.reply.header("cache-control", "no-cache");
    this.reply.header("x-accel-buffering", "no");
    this.reply.code(200).send(this.body);
  }

  /**
   * Writes one `data:` event (with `event:` and `id:` lines when given); resolves once the socket
   * can take more.
   */
  async send(value: unknown, event?: string, id?: string): Promise<void> {
    if (this.ended || this.signal.aborted) return;
    const head = `${id === undefined ? "" : `id: ${id}\n`}${event ? `event: ${event}\n` : ""}`;
    const frame = `${head}data: ${JSON.stringify(value)}\n\n`;
    if (!this.body.write(frame)) {
      await once(this.body, "drain", { signal: this.signal }).catch(() => undefined);
    }
  }

  /**
   * Writes a last event even when the stream was ended by the server's shutdown (which
   * `send` would drop), then ends the stream without `[DONE]`: the Responses API's way.
   */
  end(last?: { value: unknown; event: string }): void {
    if (this.ended) return;
    const reason: unknown = this.signal.reason;
    this.ended = true;
    if (last && !(reason instanceof ClientDisconnected) && !this.body.destroyed) {
      this.body.write(`event: ${last.event}\ndata: ${JSON.stringify(last.value)}\n\n`);
    }
    this.cleanup();
    if (!this.body.destroyed) this.body.end();
  }

  /**
   * Ends the stream the way OpenAI's chat completions do: an error (if any) as a `data:` event with
   * an OpenAI error object, then `data: [DONE]`. Nothing is written to a client
   * that has gone.
   */
  async finish(err?: unknown): Promise<void> {
    if (this.ended) return;
    const reason: unknown = this.signal.reason;
    this.ended = true;
    // Written directly, not through send(): when the stream was ended by the shutdown grace
    // period the signal is aborted, and send() would silently drop the error event, leaving a
    // cut stream that looks complete.
    if (err !== undefined && !(reason instanceof ClientDisconnected) && !this.body.destroyed) {
      this.body.write(`data: ${JSON.stringify(toOpenAIError(reason instanceof GatewayError ? reason : err).body)}\n\n`);
    }
    this.cleanup();
    if (!this.body.destroyed) this.body.end("data: [DONE]\n\n");
  }
}
