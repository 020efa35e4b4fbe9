/**
 * Browser and HTTP/1.1 paths to an agent's terminal, over the same subscriptions as the Attach RPC:
 *
 * - `GET /v1/agents/{id}/stream`: server-sent events. `hello` (the agent), `replay` and `data`
 *   (output, base64, with its absolute offset), `notice`, and last `exit`. Every output event's
 *   `id:` is the offset after it, so an EventSource that reconnects resumes exactly where it left
 *   off (`Last-Event-ID`). `?offset=N` or `?tail=N` choose where to start; default: all retained.
 * - `GET /v1/agents/{id}/ws`: a WebSocket carrying the terminal both ways. Server -> client: binary
 *   frames are raw output bytes; text frames are JSON control messages (`opened`, `notice`, `exit`).
 *   Client -> server: binary frames are input bytes; text frames are JSON `{"type":"input","data"}`,
 *   `{"type":"resize","cols","rows"}`, `{"type":"signal","signal":"INT"}` or `{"type":"detach"}`.
 *   `?mode=read-only` attaches as an observer; `?offset=N` replays from there.
 *
 * A slow reader never makes the server buffer: the subscription is a cursor into the agent's log
 * and is pulled only when the socket has room (SSE: drain; WebSocket: bufferedAmount under 1 MiB).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import type { AgentSupervisor } from "../../agents/agent-supervisor.js";
import { AGENT_SIGNALS, type AgentEvent, type AgentSignal, type LogStart } from "../../agents/types.js";
import { asGatewayError, GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import type { Metrics } from "../../observability/metrics.js";
import { SseStream } from "../sse.js";

export interface AgentRoutesDeps {
  supervisor: AgentSupervisor;
  metrics: Metrics;
  shutdown: AbortSignal;
}

/** Pause pulling output while the WebSocket holds more than this unsent. */
const WS_HIGH_WATER = 1024 * 1024;
/** Largest client frame accepted (input or control). */
const WS_MAX_PAYLOAD = 64 * 1024;

function offsetParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw invalidArgument(`${name} must be a non-negative integer`, name);
  return Number(raw);
}

/** Where to start: `Last-Event-ID` (an EventSource reconnecting) wins, then ?offset, then ?tail, else all. */
function startOf(request: FastifyRequest<{ Querystring: { offset?: string; tail?: string } }>): LogStart {
  const last = request.headers["last-event-id"];
  const resume = offsetParam(typeof last === "string" ? last : undefined, "Last-Event-ID");
  if (resume !== undefined) return { offset: resume };
  const offset = offsetParam(request.query.offset, "offset");
  if (offset !== undefined) return { offset };
  const tail = offsetParam(request.query.tail, "tail");
  if (tail !== undefined) return { tail };
  return { offset: 0 };
}

function exitJson(e: Extract<AgentEvent, { type: "exit" }>["exit"]) {
  return { ...e, endedAt: e.endedAt.toISOString() };
}

export async function registerAgentRoutes(app: FastifyInstance, deps: AgentRoutesDeps): Promise<void> {
  const { supervisor, metrics, shutdown } = deps;
  await app.register(import("@fastify/websocket"), { options: { maxPayload: WS_MAX_PAYLOAD } });

  app.get<{ Params: { id: string }; Querystring: { offset?: string; tail?: string } }>(
    "/v1/agents/:id/stream",
    { schema: { tags: ["agents"], summary: "An agent's terminal output as server-sent events (replay, data, exit)" } },
    async (request, reply) => {
      // Failures before the first event (unknown agent, bad offset) keep their HTTP status.
      const sub = await supervisor.subscribe(request.params.id, { from: startOf(request), mode: "read-only" });
      const sse = new SseStream(reply, shutdown);
      sse.open();
      const onEnd = metrics.streamStarted("sse");
      void (async () => {
        try {
          await sse.send({ agent: sub.agent, startOffset: sub.startOffset }, "hello");
          for await (const e of sub) {
            if (sse.signal.aborted) break;
            if (e.type === "output") {
              const end = String(e.offset + e.data.length);
              await sse.send({ offset: e.offset, data: e.data.toString("base64") }, e.replay ? "replay" : "data", end);
            } else if (e.type === "notice") {
              await sse.send(e.notice, "notice");
            } else {
              await sse.send(exitJson(e.exit), "exit");
            }
          }
          sse.end();
        } catch (err) {
          const g = asGatewayError(err);
          sse.end({ value: { error: { message: g.message, code: g.code ?? g.kind } }, event: "error" });
        } finally {
          sub.close();
          onEnd();
        }
      })();
      return reply;
    },
  );

  app.get<{ Params: { id: string }; Querystring: { offset?: string; tail?: string; mode?: string } }>(
    "/v1/agents/:id/ws",
    { websocket: true, schema: { hide: true } },
    (socket: WebSocket, request) => {
      void serveWebSocket(socket, request, supervisor, metrics);
    },
  );
}

async function serveWebSocket(
  socket: WebSocket,
  request: FastifyRequest<{ Params: { id: string }; Querystring: { offset?: string; tail?: string; mode?: string } }>,
  supervisor: AgentSupervisor,
  metrics: Metrics,
): Promise<void> {
  const control = (msg: unknown) => socket.send(JSON.stringify(msg));
  let sub;
  try {
    const mode = request.query.mode === "read-only" ? "read-only" : "read-write";
    if (request.query.mode !== undefined && request.query.mode !== "read-only" && request.query.mode !== "read-write")
      throw invalidArgument("mode must be read-only or read-write", "mode");
    sub = await supervisor.subscribe(request.params.id, { from: startOf(request), mode });
  } catch (err) {
    const g = asGatewayError(err);
    control({ type: "error", message: g.message, code: g.code ?? g.kind });
    // 4000 + HTTP status: a close code a browser can tell apart (4404: no such agent).
    socket.close(4000 + Math.min(g.status, 999), g.message.slice(0, 120));
    return;
  }
  const onEnd = metrics.streamStarted("websocket");
  const s = sub;
  socket.on("message", (data: Buffer, isBinary: boolean) => {
    try {
      if (isBinary) {
        s.write(data);
        return;
      }
      const msg = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
      if (msg.type === "input" && typeof msg.data === "string") s.write(Buffer.from(msg.data, "utf8"));
      else if (msg.type === "resize") s.resize({ cols: Number(msg.cols), rows: Number(msg.rows) });
      else if (msg.type === "signal" && AGENT_SIGNALS.includes(msg.signal as AgentSignal))
        s.signal(msg.signal as AgentSignal);
      else if (msg.type === "detach") s.close();
      else throw invalidArgument(`unknown control message ${JSON.stringify(msg.type)}`, "type");
    } catch (err) {
      const g = err instanceof SyntaxError ? invalidArgument("text frames must be JSON") : asGatewayError(err);
      control({ type: "error", message: g.message, code: g.code ?? g.kind });
    }
  });
  socket.on("close", () => s.close());
  try {
    control({ type: "opened", agent: s.agent, startOffset: s.startOffset, mode: s.mode });
    for await (const e of s) {
      if (socket.readyState !== socket.OPEN) break;
      if (e.type === "output") socket.send(e.data, { binary: true });
      else if (e.type === "notice") control({ type: "notice", ...e.notice });
      else control({ type: "exit", ...exitJson(e.exit) });
      // Backpressure: stop pulling while the socket holds too much; the log keeps the rest.
      while (socket.bufferedAmount > WS_HIGH_WATER && socket.readyState === socket.OPEN) {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    if (socket.readyState === socket.OPEN) socket.close(1000, "agent ended or detached");
  } catch (err) {
    const g = err instanceof GatewayError ? err : asGatewayError(err);
    if (socket.readyState === socket.OPEN) {
      control({ type: "error", message: g.message, code: g.code ?? g.kind });
      socket.close(1011, g.message.slice(0, 120));
    }
  } finally {
    s.close();
    onEnd();
  }
}
