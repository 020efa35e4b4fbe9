/**
 * AgentService RPC handlers: translate, delegate to the AgentSupervisor (src/agents/), translate
 * back. Errors become Connect codes in the error interceptor.
 */
import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AgentOutputChunkSchema,
  AgentService,
  AttachOpenedSchema,
  AttachResponseSchema,
  DeleteAgentResponseSchema,
  GetAgentResponseSchema,
  ListAgentsResponseSchema,
  ReadLogsResponseSchema,
  ResizeAgentResponseSchema,
  SendInputResponseSchema,
  SignalAgentResponseSchema,
  StartAgentResponseSchema,
  WatchLogsResponseSchema,
  type AttachRequest,
  type AttachResponse,
  type WatchLogsResponse,
} from "../../gen/agentgate/v1/agent_service_pb.js";
import type { AgentSupervisor } from "../agents/agent-supervisor.js";
import type { Subscription } from "../agents/subscription.js";
import type { AgentEvent, LogStart } from "../agents/types.js";
import { asGatewayError, invalidArgument } from "../errors/gateway-error.js";
import {
  pbAgent,
  pbAttachMode,
  pbExit,
  pbNotice,
  pbSize,
  toAttachMode,
  toNumber,
  toOverflow,
  toSignal,
  toSize,
  toStartSpec,
  toStates,
  toTarget,
} from "./agent-convert.js";

export interface AgentServiceOptions {
  /** RPC_MESSAGE_LIMIT_BYTES: output chunks stay below it with room for the frame around them. */
  messageLimitBytes: number;
}

const MAX_CHUNK_BYTES = 64 * 1024;

function requireId(id: string): string {
  if (!id) throw invalidArgument("agent_id is required", "agent_id");
  return id;
}

/** Output, notice and exit events as the frames of Attach and WatchLogs (same shape, other types). */
function frameOf(e: AgentEvent) {
  switch (e.type) {
    case "output":
      return {
        case: "output" as const,
        value: create(AgentOutputChunkSchema, { offset: BigInt(e.offset), data: e.data, replay: e.replay }),
      };
    case "notice":
      return { case: "notice" as const, value: pbNotice(e.notice) };
    case "exit":
      return { case: "exit" as const, value: pbExit(e.exit) };
  }
}

export function agentService(sup: AgentSupervisor, opts: AgentServiceOptions): ServiceImpl<typeof AgentService> {
  const chunkBytes = Math.max(256, Math.min(MAX_CHUNK_BYTES, opts.messageLimitBytes - 1024));

  /** Ends the subscription when the client goes away (or the server shuts down the call). */
  const closeOnAbort = (sub: Subscription, ctx: HandlerContext) => {
    if (ctx.signal.aborted) sub.close();
    else ctx.signal.addEventListener("abort", () => sub.close(), { once: true });
  };

  return {
    async startAgent(request) {
      const agent = await sup.start(toStartSpec(request));
      return create(StartAgentResponseSchema, { agent: pbAgent(agent) });
    },

    async *attach(requests: AsyncIterable<AttachRequest>, ctx): AsyncIterable<AttachResponse> {
      const frames = requests[Symbol.asyncIterator]();
      const first = await frames.next();
      if (first.done || first.value.frame.case !== "open")
        throw invalidArgument("the first Attach frame must be `open` (naming the agent)", "open");
      const open = first.value.frame.value;
      const mode = toAttachMode(open.mode);
      const sub = await sup.subscribe(requireId(open.agentId), {
        from: open.replayOffset === undefined ? undefined : { offset: toNumber(open.replayOffset, "replay_offset") },
        mode,
        overflow: toOverflow(open.overflowPolicy),
        chunkBytes,
      });
      closeOnAbort(sub, ctx);
      let failure: unknown;
      try {
        // The size on open is a convenience for read-write clients; observers' sizes are ignored.
        const size = toSize(open.size);
        if (size && mode === "read-write" && !sub.agent.exit) sub.resize(size);
        yield create(AttachResponseSchema, {
          frame: {
            case: "opened",
            value: create(AttachOpenedSchema, {
              agent: pbAgent(sub.agent),
              startOffset: BigInt(sub.startOffset),
              mode: pbAttachMode(mode),
            }),
          },
        });
        // Client frames are handled as they come, beside the output loop below. A bad frame ends
        // the call with its error; detach ends it cleanly.
        void (async () => {
          for (;;) {
            const r = await frames.next();
            if (r.done) return; // half-close: keep sending output until detach, exit or abort
            const f = r.value.frame;
            try {
              if (f.case === "input") sub.write(Buffer.from(f.value));
              else if (f.case === "resize") sub.resize(toSize(f.value)!);
              else if (f.case === "signal") sub.signal(toSignal(f.value.signal), toTarget(f.value.target));
              else if (f.case === "detach") return sub.close();
              else throw invalidArgument("`open` may only be the first Attach frame", "open");
            } catch (err) {
              // Steering an agent that just exited: its exit frame is on the way; nothing to report.
              if (asGatewayError(err).code !== "agent_exited") throw err;
            }
          }
        })().catch((err: unknown) => {
          failure ??= err;
          sub.close();
        });
        for await (const e of sub) yield create(AttachResponseSchema, { frame: frameOf(e) });
        if (failure) throw failure;
      } finally {
        sub.close();
      }
    },

    async getAgent(request) {
      return create(GetAgentResponseSchema, { agent: pbAgent(await sup.get(requireId(request.agentId))) });
    },

    async listAgents(request) {
      const page = await sup.list({
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        states: toStates(request.states),
        labels: request.labels,
      });
      return create(ListAgentsResponseSchema, {
        agents: page.agents.map(pbAgent),
        nextPageToken: page.nextPageToken,
      });
    },

    async sendInput(request) {
      const n = await sup.input(requireId(request.agentId), Buffer.from(request.data));
      return create(SendInputResponseSchema, { writtenBytes: BigInt(n) });
    },

    async resizeAgent(request) {
      const size = toSize(request.size);
      if (!size) throw invalidArgument("size is required", "size");
      return create(ResizeAgentResponseSchema, { size: pbSize(await sup.resize(requireId(request.agentId), size)) });
    },

    async signalAgent(request) {
      const signal = toSignal(request.signal);
      const agent = await sup.signal(requireId(request.agentId), signal, toTarget(request.target));
      return create(SignalAgentResponseSchema, { agent: pbAgent(agent) });
    },

    async readLogs(request) {
      const s = request.start;
      const start: LogStart =
        s.case === "offset"
          ? { offset: toNumber(s.value, "offset") }
          : s.case === "tailBytes"
            ? { tail: toNumber(s.value, "tail_bytes") }
            : undefined;
      const r = await sup.readLogs(requireId(request.agentId), start, request.maxBytes);
      return create(ReadLogsResponseSchema, {
        offset: BigInt(r.offset),
        data: r.data,
        endOffset: BigInt(r.endOffset),
        logStartOffset: BigInt(r.logStartOffset),
        eof: r.eof,
      });
    },

    async *watchLogs(request, ctx): AsyncIterable<WatchLogsResponse> {
      const s = request.start;
      const sub = await sup.subscribe(requireId(request.agentId), {
        from:
          s.case === "offset"
            ? { offset: toNumber(s.value, "offset") }
            : s.case === "tailBytes"
              ? { tail: toNumber(s.value, "tail_bytes") }
              : undefined,
        mode: "read-only",
        overflow: "skip",
        chunkBytes,
      });
      closeOnAbort(sub, ctx);
      try {
        for await (const e of sub) yield create(WatchLogsResponseSchema, { frame: frameOf(e) });
      } finally {
        sub.close();
      }
    },

    async deleteAgent(request) {
      const grace = request.gracePeriod ? durationMs(request.gracePeriod) : undefined;
      const agent = await sup.delete(requireId(request.agentId), grace);
      return create(DeleteAgentResponseSchema, { agent: pbAgent(agent) });
    },
  };
}
