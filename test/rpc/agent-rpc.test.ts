// agentgate.v1.AgentService through the typed clients against a real gateway: Attach over h2c
// (echo round trip, detach and re-attach with replay, read-only observers), WatchLogs over
// HTTP/1.1, the unary calls, and bad input answered with clear Connect errors while the gateway
// stays healthy. Agents run real programs in PTYs without a sandbox (one test uses bwrap).
import fs from "node:fs";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AgentExitReason,
  AgentNoticeKind,
  AgentSignal,
  AgentState,
  AttachMode,
  AttachRequestSchema,
  createAgentgateClients,
  SandboxDriver,
  type AgentgateClients,
  type AttachRequest,
  type AttachResponse,
  type StartAgentRequestSchema,
} from "../../clients/index.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { procStat } from "../../src/agents/pty-process.js";
import { tempDir } from "../agents/helpers.js";

const MESSAGE_LIMIT = 65_536;
let h: GatewayHarness;
let ag: AgentgateClients;
let dataDir: string;

beforeAll(async () => {
  dataDir = tempDir("agentgate-rpc-agents-");
  h = await startGateway({ env: { DATA_DIR: dataDir, RPC_MESSAGE_LIMIT_BYTES: String(MESSAGE_LIMIT) } });
  ag = createAgentgateClients({ baseUrl: h.url, httpVersion: "2" });
});
afterAll(async () => {
  await h?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Client frames for a bidi call, pushed as the test goes. */
class Outbox implements AsyncIterable<AttachRequest> {
  private queue: AttachRequest[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(frame: AttachRequest["frame"]): void {
    this.queue.push(create(AttachRequestSchema, { frame }));
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<AttachRequest> {
    for (;;) {
      while (this.queue.length) yield this.queue.shift()!;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/** Reads a response stream in the background; collects output by offset, notices and the exit. */
class Frames {
  readonly frames: AttachResponse["frame"][] = [];
  output = Buffer.alloc(0);
  firstOffset: number | undefined;
  error: unknown;
  ended = false;
  readonly done: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(stream: AsyncIterable<{ frame: AttachResponse["frame"] | { case: string; value: unknown } }>) {
    this.done = (async () => {
      try {
        for await (const res of stream) {
          const f = res.frame as AttachResponse["frame"];
          this.frames.push(f);
          if (f.case === "output") {
            this.firstOffset ??= Number(f.value.offset);
            expect(Number(f.value.offset)).toBe(this.firstOffset + this.output.length);
            this.output = Buffer.concat([this.output, f.value.data]);
          }
          this.poke();
        }
      } catch (err) {
        this.error = err;
      } finally {
        this.ended = true;
        this.poke();
      }
    })();
  }

  get text(): string {
    return this.output.toString();
  }

  get exit() {
    const f = this.frames.find((x) => x.case === "exit");
    return f?.case === "exit" ? f.value : undefined;
  }

  get opened() {
    const f = this.frames[0];
    return f?.case === "opened" ? f.value : undefined;
  }

  async until(cond: () => boolean, what: string): Promise<void> {
    while (!cond()) {
      if (this.ended)
        throw new Error(`stream ended (${String(this.error)}) before ${what}: ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  untilText(s: string): Promise<void> {
    return this.until(() => this.text.includes(s), JSON.stringify(s));
  }

  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

function attach(open: { agentId: string; replayOffset?: bigint; mode?: AttachMode }) {
  const out = new Outbox();
  out.push({ case: "open", value: { ...open, $typeName: "agentgate.v1.AttachOpen" } as never });
  const frames = new Frames(ag.agents.attach(out));
  return { out, frames };
}

const sh = (script: string, more: MessageInitShape<typeof StartAgentRequestSchema> = {}) =>
  ag.agents.startAgent({ argv: ["sh", "-c", script], sandbox: SandboxDriver.NONE, ...more });

async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

async function healthy(): Promise<void> {
  const { agent } = await sh("echo healthy");
  expect(agent?.state).toBe(AgentState.RUNNING);
}

describe("Attach over h2c", () => {
  it("echo round trip through cat: opened, output with offsets, input, and the exit frame last", async () => {
    const { agent } = await ag.agents.startAgent({ argv: ["cat"], sandbox: SandboxDriver.NONE });
    const { out, frames } = attach({ agentId: agent!.id, replayOffset: 0n });
    await frames.until(() => frames.opened !== undefined, "opened");
    expect(frames.opened).toMatchObject({ startOffset: 0n, mode: AttachMode.READ_WRITE });
    expect(frames.opened?.agent?.id).toBe(agent!.id);
    out.push({ case: "input", value: Buffer.from("ping-1\r") });
    // The terminal echoes the line, then cat writes it back.
    await frames.untilText("ping-1\r\nping-1\r\n");
    out.push({ case: "input", value: Buffer.from("\x04") }); // Ctrl-D: cat sees EOF and exits
    await frames.done;
    expect(frames.error).toBeUndefined();
    expect(frames.frames.at(-1)?.case).toBe("exit");
    expect(
      frames.exit,
      JSON.stringify(frames.exit, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
    ).toMatchObject({ exitCode: 0, reason: AgentExitReason.EXITED });
  });

  it("resize frames reach the program as SIGWINCH; a typed Ctrl-C interrupts only the foreground command; the exit frame carries the signal", async () => {
    const { agent } = await ag.agents.startAgent({ argv: ["sh", "-i"], sandbox: SandboxDriver.NONE });
    const { out, frames } = attach({ agentId: agent!.id, replayOffset: 0n });
    await frames.untilText("# ");
    out.push({ case: "input", value: Buffer.from("trap 'echo WINCH $(stty size)' WINCH\r") });
    await frames.untilText("WINCH\r\n# ");
    out.push({ case: "resize", value: { cols: 91, rows: 27, $typeName: "agentgate.v1.TerminalSize" } as never });
    // The interactive shell runs its trap once its pending read returns: an empty command line.
    out.push({ case: "input", value: Buffer.from("\r") });
    await frames.untilText("WINCH 27 91");
    // A background job (its own process group) and a foreground command; ^C as the user types it.
    out.push({ case: "input", value: Buffer.from("sleep 60 & sleep 30\r") });
    const pid = Number((await ag.agents.getAgent({ agentId: agent!.id })).agent!.pid);
    const fg = () => procStat(pid)?.tpgid ?? -1;
    while (!(fg() > 0 && fg() !== pid)) await new Promise((resolve) => setTimeout(resolve, 5));
    out.push({ case: "input", value: Buffer.from("\x03") });
    // The shell is back (sleep 30 was interrupted) and the background job still runs.
    out.push({ case: "input", value: Buffer.from("kill -0 $! && echo background-alive $((3+4))\r") });
    await frames.untilText("background-alive 7");
    out.push({ case: "input", value: Buffer.from("kill $!\r") });
    out.push({ case: "signal", value: { signal: AgentSignal.KILL, $typeName: "agentgate.v1.AttachSignal" } as never });
    await frames.done;
    expect(frames.error).toBeUndefined();
    expect(frames.exit).toMatchObject({ signal: 9, signalName: "SIGKILL", reason: AgentExitReason.CLIENT_SIGNAL });
    expect(frames.exit?.exitCode).toBeUndefined();
  });

  it("detach ends the stream cleanly; re-attaching with a replay offset resumes with exactly the missing bytes", async () => {
    const { agent } = await sh("while read line; do echo got-$line; done");
    const id = agent!.id;
    const first = attach({ agentId: id, replayOffset: 0n });
    first.out.push({ case: "input", value: Buffer.from("one\r") });
    await first.frames.untilText("got-one\r\n");
    first.out.push({ case: "detach", value: {} as never });
    await first.frames.done;
    expect(first.frames.error).toBeUndefined();
    expect(first.frames.exit).toBeUndefined();
    const seen = first.frames.output.length;
    // Output while nobody is attached (a WatchLogs stream tells when it is there).
    const watcher = new Frames(ag.agents.watchLogs({ agentId: id }));
    await ag.agents.sendInput({ agentId: id, data: Buffer.from("two\r") });
    await watcher.untilText("got-two\r\n");
    const second = attach({ agentId: id, replayOffset: BigInt(seen) });
    await second.frames.untilText("got-two\r\n");
    expect(second.frames.opened?.startOffset).toBe(BigInt(seen));
    expect(second.frames.firstOffset).toBe(seen);
    const replayed = second.frames.frames.filter((f) => f.case === "output" && f.value.replay);
    expect(replayed.length).toBeGreaterThan(0);
    const whole = await ag.agents.readLogs({ agentId: id, start: { case: "offset", value: 0n } });
    expect(Buffer.concat([first.frames.output, second.frames.output]).toString()).toBe(
      Buffer.from(whole.data).toString(),
    );
    await ag.agents.signalAgent({ agentId: id, signal: AgentSignal.KILL });
    await second.frames.done;
    expect(second.frames.exit?.reason).toBe(AgentExitReason.CLIENT_SIGNAL);
  });

  it("a read-only observer sees the output and notices but cannot write (permission_denied)", async () => {
    const { agent } = await sh("read x; echo got-$x");
    const id = agent!.id;
    const writer = attach({ agentId: id, replayOffset: 0n });
    await writer.frames.until(() => writer.frames.opened !== undefined, "opened");
    const observer = attach({ agentId: id, replayOffset: 0n, mode: AttachMode.READ_ONLY });
    await observer.frames.until(() => observer.frames.opened !== undefined, "opened");
    expect(observer.frames.opened?.mode).toBe(AttachMode.READ_ONLY);
    // The writer hears about the new client.
    await writer.frames.until(
      () => writer.frames.frames.some((f) => f.case === "notice" && f.value.kind === AgentNoticeKind.CLIENTS_CHANGED),
      "a CLIENTS_CHANGED notice",
    );
    observer.out.push({ case: "input", value: Buffer.from("evil\r") });
    await observer.frames.done;
    expect((observer.frames.error as ConnectError).code).toBe(Code.PermissionDenied);
    expect((observer.frames.error as ConnectError).rawMessage).toMatch(/read-only/);
    writer.out.push({ case: "input", value: Buffer.from("good\r") });
    await writer.frames.done;
    expect(writer.frames.text).toContain("got-good");
    expect(writer.frames.text).not.toContain("evil");
  });

  it("without a first `open` frame the call fails with invalid_argument", async () => {
    const out = new Outbox();
    out.push({ case: "input", value: Buffer.from("x") });
    const frames = new Frames(ag.agents.attach(out));
    await frames.done;
    expect((frames.error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((frames.error as ConnectError).rawMessage).toMatch(/first Attach frame must be `open`/);
    const empty = new Outbox();
    empty.end();
    const none = new Frames(ag.agents.attach(empty));
    await none.done;
    expect((none.error as ConnectError).code).toBe(Code.InvalidArgument);
    await healthy();
  });

  it("a second `open`, an unknown agent and an oversized input frame end the call with a clear code", async () => {
    const unknown = attach({ agentId: "agt_doesnotexist" });
    await unknown.frames.done;
    expect((unknown.frames.error as ConnectError).code).toBe(Code.NotFound);

    const { agent } = await ag.agents.startAgent({ argv: ["cat"], sandbox: SandboxDriver.NONE });
    const twice = attach({ agentId: agent!.id });
    twice.out.push({ case: "open", value: { agentId: agent!.id } as never });
    await twice.frames.done;
    expect((twice.frames.error as ConnectError).code).toBe(Code.InvalidArgument);

    const big = attach({ agentId: agent!.id });
    big.out.push({ case: "input", value: Buffer.alloc(MESSAGE_LIMIT + 1, 0x61) });
    await big.frames.done;
    expect((big.frames.error as ConnectError).code).toBe(Code.ResourceExhausted);
    await ag.agents.deleteAgent({ agentId: agent!.id, gracePeriod: durationFromMs(0) });
    await healthy();
  });
});

describe("WatchLogs over HTTP/1.1", () => {
  it("streams replay then live output, notices and the exit frame, the same bytes as ReadLogs", async () => {
    const h1 = createAgentgateClients({ baseUrl: h.url, httpVersion: "1.1" });
    const { agent } = await h1.agents.startAgent({
      argv: ["sh", "-c", "seq 1 2000; read x; echo live-$x"],
      sandbox: SandboxDriver.NONE,
    });
    const id = agent!.id;
    const frames = new Frames(h1.agents.watchLogs({ agentId: id, start: { case: "offset", value: 0n } }));
    await frames.untilText("2000\r\n");
    await h1.agents.sendInput({ agentId: id, data: Buffer.from("yes\r") });
    await frames.done;
    expect(frames.error).toBeUndefined();
    expect(frames.text.endsWith("live-yes\r\n")).toBe(true);
    expect(
      frames.exit,
      JSON.stringify(frames.exit, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
    ).toMatchObject({ exitCode: 0, reason: AgentExitReason.EXITED });
    const logs = await h1.agents.readLogs({ agentId: id, start: { case: "offset", value: 0n }, maxBytes: 1 << 20 });
    expect(Buffer.from(logs.data).equals(frames.output)).toBe(true);
    expect(logs).toMatchObject({ eof: true, endOffset: BigInt(frames.output.length), logStartOffset: 0n });
    // A tail of a finished agent: the last bytes, then the exit.
    const tail = new Frames(h1.agents.watchLogs({ agentId: id, start: { case: "tailBytes", value: 10n } }));
    await tail.done;
    expect(tail.text).toBe(frames.text.slice(-10));
    expect(tail.frames.at(-1)?.case).toBe("exit");
  });
});

describe("unary calls", () => {
  it("GetAgent, ListAgents, SendInput, ResizeAgent, SignalAgent, ReadLogs, DeleteAgent", async () => {
    const { agent } = await sh(
      `trap 'echo WINCH $(stty size)' WINCH; echo ready; while :; do read l && echo in-$l; done`,
      {
        labels: { suite: "rpc-unary" },
        size: { cols: 100, rows: 30 },
        limits: { wallTime: durationFromMs(60_000) },
      },
    );
    const id = agent!.id;
    expect(agent).toMatchObject({
      state: AgentState.RUNNING,
      sandbox: SandboxDriver.NONE,
      size: { cols: 100, rows: 30 },
    });
    expect(agent?.replicaAddress).toBe(`127.0.0.1:${h.port}`);
    expect(agent?.limits?.wallTime?.seconds).toBe(60n);

    const got = await ag.agents.getAgent({ agentId: id });
    expect(got.agent?.id).toBe(id);
    const listed = await ag.agents.listAgents({ labels: { suite: "rpc-unary" } });
    expect(listed.agents.map((a) => a.id)).toEqual([id]);

    const watch = new Frames(ag.agents.watchLogs({ agentId: id, start: { case: "offset", value: 0n } }));
    // The trap is set before "ready": a resize earlier than that would go unnoticed.
    await watch.untilText("ready");
    const w = await ag.agents.sendInput({ agentId: id, data: Buffer.from("abc\r") });
    expect(w.writtenBytes).toBe(4n);
    const resized = await ag.agents.resizeAgent({ agentId: id, size: { cols: 132, rows: 43 } });
    expect(resized.size).toMatchObject({ cols: 132, rows: 43 });
    await watch.untilText("WINCH 43 132");
    await watch.untilText("in-abc");

    const stopped = await ag.agents.signalAgent({ agentId: id, signal: AgentSignal.STOP });
    expect(stopped.agent?.state).toBe(AgentState.PAUSED);
    const resumed = await ag.agents.signalAgent({ agentId: id, signal: AgentSignal.CONT });
    expect(resumed.agent?.state).toBe(AgentState.RUNNING);

    // Both lines are out and the program waits for input: the tail is stable.
    const logs = await ag.agents.readLogs({ agentId: id, start: { case: "tailBytes", value: 8n } });
    expect(Buffer.from(logs.data).toString()).toBe(watch.text.slice(-8));
    expect(logs.endOffset).toBe(BigInt(watch.output.length));
    expect(logs.eof).toBe(false);

    const deleted = await ag.agents.deleteAgent({ agentId: id, gracePeriod: durationFromMs(1000) });
    expect(deleted.agent?.exitStatus?.reason).toBe(AgentExitReason.DELETED);
    await watch.done;
    expect(watch.exit?.reason).toBe(AgentExitReason.DELETED);
    expect((await connectError(ag.agents.getAgent({ agentId: id }))).code).toBe(Code.NotFound);
  });
});

describe("bad input: a clear Connect error each, and the gateway stays healthy", () => {
  it("unknown agent ids are not_found", async () => {
    for (const call of [
      () => ag.agents.getAgent({ agentId: "agt_unknown" }),
      () => ag.agents.sendInput({ agentId: "agt_unknown", data: Buffer.from("x") }),
      () => ag.agents.resizeAgent({ agentId: "agt_unknown", size: { cols: 10, rows: 10 } }),
      () => ag.agents.signalAgent({ agentId: "agt_unknown", signal: AgentSignal.INT }),
      () => ag.agents.readLogs({ agentId: "agt_unknown" }),
      () => ag.agents.deleteAgent({ agentId: "agt_unknown" }),
    ]) {
      const err = await connectError(call());
      expect(err.code).toBe(Code.NotFound);
      expect(err.rawMessage).toMatch(/agt_unknown not found/);
    }
    await healthy();
  });

  it("input to an ended agent is failed_precondition", async () => {
    const { agent } = await sh("exit 0");
    const w = new Frames(ag.agents.watchLogs({ agentId: agent!.id, start: { case: "offset", value: 0n } }));
    await w.done;
    const err = await connectError(ag.agents.sendInput({ agentId: agent!.id, data: Buffer.from("late\r") }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toMatch(/has exited/);
  });

  it("invalid signals, argv with NUL bytes, bad sizes and limits are invalid_argument", async () => {
    const { agent } = await sh("read x");
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => ag.agents.signalAgent({ agentId: agent!.id, signal: AgentSignal.UNSPECIFIED }), /signal must be one of/],
      [() => ag.agents.signalAgent({ agentId: agent!.id, signal: 99 as AgentSignal }), /signal must be one of/],
      [() => sh("true", { argv: ["echo", "a\0b"] }), /argv\[1\] contains a NUL byte/],
      [() => ag.agents.startAgent({ sandbox: SandboxDriver.NONE }), /no prompt/],
      [() => sh("true", { size: { cols: 0, rows: 5 } }), /size.cols/],
      [() => ag.agents.resizeAgent({ agentId: agent!.id, size: { cols: 2000, rows: 5 } }), /size.cols/],
      [() => ag.agents.resizeAgent({ agentId: agent!.id }), /size is required/],
      [() => sh("true", { limits: { wallTime: durationFromMs(-5) } }), /wall_time/],
      [() => sh("true", { limits: { addressSpaceBytes: 0n } }), /addressSpaceBytes/],
      [() => ag.agents.getAgent({ agentId: "" }), /agent_id is required/],
      [() => ag.agents.listAgents({ pageSize: 501 }), /page_size/],
    ];
    for (const [call, message] of cases) {
      const err = await connectError(call());
      expect(err.code, message.source).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(message);
    }
    await ag.agents.deleteAgent({ agentId: agent!.id, gracePeriod: durationFromMs(0) });
    await healthy();
  });

  it("bypass_approvals without a sandbox is failed_precondition; oversized messages are resource_exhausted", async () => {
    const err = await connectError(
      ag.agents.startAgent({ prompt: "hi", sandbox: SandboxDriver.NONE, bypassApprovals: true }),
    );
    expect(err.code).toBe(Code.FailedPrecondition);
    const { agent } = await ag.agents.startAgent({ argv: ["cat"], sandbox: SandboxDriver.NONE });
    const big = await connectError(
      ag.agents.sendInput({ agentId: agent!.id, data: Buffer.alloc(MESSAGE_LIMIT + 1, 0x62) }),
    );
    expect(big.code).toBe(Code.ResourceExhausted);
    await ag.agents.deleteAgent({ agentId: agent!.id, gracePeriod: durationFromMs(0) });
    await healthy();
  });
});

describe("the bwrap sandbox through StartAgent", () => {
  it.skipIf(!fs.existsSync("/usr/bin/bwrap"))(
    "runs the program as an unprivileged uid in /workspace, with the data directory invisible",
    async () => {
      const { agent } = await ag.agents.startAgent({
        argv: ["sh", "-c", `echo uid=$(id -u) cwd=$(pwd); ls ${dataDir} 2>&1 | head -1; echo done`],
        sandbox: SandboxDriver.BWRAP,
      });
      expect(agent).toMatchObject({ sandbox: SandboxDriver.BWRAP, networkAllowed: false });
      const w = new Frames(ag.agents.watchLogs({ agentId: agent!.id, start: { case: "offset", value: 0n } }));
      await w.done;
      expect(w.exit).toMatchObject({ exitCode: 0, reason: AgentExitReason.EXITED });
      const uid = Number(/uid=(\d+)/.exec(w.text)?.[1]);
      expect(uid).toBeGreaterThanOrEqual(1000);
      expect(w.text).toContain("cwd=/workspace");
      expect(w.text).toMatch(/No such file or directory/);
    },
  );
});
