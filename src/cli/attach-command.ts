/**
 * `agentgate attach <agent-id>`: the local terminal becomes the agent's. Raw mode, keystrokes go
 * out as Attach input frames, output comes back as it is written, window size changes follow, and
 * Ctrl-] detaches (the agent keeps running), as in `telnet` and `docker attach`. The exit code is
 * the agent's when it ends while attached, 0 after a detach.
 *
 * `agentgate agents` lists the agents.
 */
import { parseArgs } from "node:util";
import { ConnectError } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  AgentState,
  AttachMode,
  AttachRequestSchema,
  createAgentgateClients,
  type AttachRequest,
} from "../../clients/index.js";
import { ConfigError } from "../config/config-error.js";
import { loadConfig } from "../config/config.js";
import { baseUrlForBind } from "../codex/codex-config.js";

/** Ctrl-]: the detach key. */
const DETACH_KEY = 0x1d;

interface ClientFlags {
  url?: string;
  token?: string;
}

/** The server: --url, else this environment's BIND; the token: --token, else AUTH_TOKEN. */
function connection(flags: ClientFlags, env: NodeJS.ProcessEnv): { baseUrl: string; token?: string } {
  const baseUrl = flags.url ?? baseUrlForBind(loadConfig(env).bind).replace(/\/v1$/, "");
  if (!/^https?:\/\//.test(baseUrl)) throw new ConfigError(`--url must be an http:// or https:// URL, got ${baseUrl}`);
  return { baseUrl, token: flags.token ?? (env.AUTH_TOKEN || env.CODEX_PROXY_TOKEN || undefined) };
}

function parse(argv: string[], options: Record<string, { type: "string" | "boolean" }>) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new ConfigError((err as Error).message.split("\n")[0]!);
  }
}

function describeError(err: unknown): string {
  // ConnectError's message reads "[not_found] agent x not found".
  return err instanceof ConnectError ? err.message : String(err);
}

export async function attachCommand(
  argv: string[],
  io = { stdin: process.stdin, stdout: process.stdout },
): Promise<number> {
  const { values, positionals } = parse(argv, {
    url: { type: "string" },
    token: { type: "string" },
    "read-only": { type: "boolean" },
    "no-replay": { type: "boolean" },
  });
  if (positionals.length !== 1) throw new ConfigError("usage: agentgate attach <agent-id> [--url URL] [--read-only]");
  const agentId = positionals[0]!;
  const { baseUrl, token } = connection(values as ClientFlags, process.env);
  const { agents } = createAgentgateClients({ baseUrl, token, httpVersion: "2" });

  const requests = createWritableIterable<AttachRequest>();
  const send = (frame: MessageInitShape<typeof AttachRequestSchema>["frame"]) => {
    void requests.write(create(AttachRequestSchema, { frame })).catch(() => undefined);
  };
  const readOnly = values["read-only"] === true;
  const size = () => ({ cols: io.stdout.columns || 80, rows: io.stdout.rows || 24 });
  send({
    case: "open",
    value: {
      agentId,
      mode: readOnly ? AttachMode.READ_ONLY : AttachMode.READ_WRITE,
      // Replay what the agent wrote so far (as much as is retained), then go live.
      replayOffset: values["no-replay"] ? undefined : 0n,
      size: io.stdout.isTTY && !readOnly ? size() : undefined,
    },
  });

  const stdin = io.stdin;
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  let detached = false;
  const onInput = (chunk: Buffer) => {
    const at = chunk.indexOf(DETACH_KEY);
    if (at >= 0) {
      if (at > 0 && !readOnly) send({ case: "input", value: chunk.subarray(0, at) });
      detached = true;
      send({ case: "detach", value: {} });
      requests.close();
      return;
    }
    // Read-only: keys are not sent, except Ctrl-C, which is answered locally by detaching too.
    if (readOnly) {
      if (chunk.includes(0x03)) {
        detached = true;
        requests.close();
      }
      return;
    }
    send({ case: "input", value: chunk });
  };
  const onResize = () => {
    if (!readOnly) send({ case: "resize", value: size() });
  };
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on("data", onInput);
  stdin.resume();
  io.stdout.on("resize", onResize);
  process.stderr.write(`[attached to ${agentId}${readOnly ? ", read-only" : ""}; Ctrl-] detaches]\r\n`);

  let exitCode = 0;
  try {
    for await (const res of agents.attach(requests)) {
      const f = res.frame;
      if (f.case === "output") {
        if (!io.stdout.write(f.value.data)) await new Promise((r) => io.stdout.once("drain", r));
      } else if (f.case === "notice") {
        process.stderr.write(`\r\n[${f.value.message}]\r\n`);
      } else if (f.case === "exit") {
        const e = f.value;
        exitCode = e.exitCode ?? (e.signal ? 128 + e.signal : 1);
        const how = e.exitCode !== undefined ? `exit code ${e.exitCode}` : `signal ${e.signalName || e.signal}`;
        process.stderr.write(`\r\n[agent ${agentId} ended: ${how}${e.message ? `, ${e.message}` : ""}]\r\n`);
      }
    }
    if (detached) process.stderr.write(`\r\n[detached from ${agentId}; it keeps running]\r\n`);
    return exitCode;
  } catch (err) {
    process.stderr.write(`\r\nagentgate: attach failed: ${describeError(err)}\r\n`);
    return 1;
  } finally {
    stdin.off("data", onInput);
    io.stdout.off("resize", onResize);
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
    stdin.pause();
    requests.close();
  }
}

const STATE_NAMES: Record<number, string> = {
  [AgentState.STARTING]: "starting",
  [AgentState.RUNNING]: "running",
  [AgentState.PAUSED]: "paused",
  [AgentState.EXITED]: "exited",
};

export async function agentsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { url: { type: "string" }, token: { type: "string" } });
  if (positionals.length > 0) throw new ConfigError("usage: agentgate agents [--url URL]");
  const { baseUrl, token } = connection(values as ClientFlags, process.env);
  const { agents } = createAgentgateClients({ baseUrl, token, httpVersion: "1.1" });
  const rows: string[][] = [["ID", "STATE", "PID", "OUTPUT", "COMMAND"]];
  let pageToken = "";
  try {
    do {
      const page = await agents.listAgents({ pageSize: 500, pageToken });
      for (const a of page.agents) {
        const state =
          a.state === AgentState.EXITED && a.exitStatus
            ? `exited (${a.exitStatus.exitCode ?? a.exitStatus.signalName})`
            : (STATE_NAMES[a.state] ?? "unknown");
        rows.push([a.id, state, a.pid ? String(a.pid) : "-", `${a.outputBytes} B`, a.argv.join(" ").slice(0, 60)]);
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
  } catch (err) {
    process.stderr.write(`agentgate: cannot list agents: ${describeError(err)}\n`);
    return 1;
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd()}\n`,
    );
  return 0;
}
