/**
 * Runs an endpoint's handler once: a fresh directory with the handler file, the program in the
 * sandbox (no network, per-call limits, a timeout), one JSON object in on stdin, one JSON value out
 * on stdout. The outcome is classified into the failure kinds a dream reports (EndpointFailureKind),
 * so validation and invocation describe problems the same way.
 */
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { SandboxedRunner, SandboxedRunResult } from "../sandbox/sandboxed-run.js";
import type { ProcessLimits } from "../sandbox/types.js";
import type { EndpointHandler, FailureKind, HandlerRuntime } from "./types.js";

/** What the handler reads on stdin (the contract in endpoint_service.proto). */
export interface HandlerInput {
  method: string;
  path: string;
  path_params: Record<string, unknown>;
  query: Record<string, unknown>;
  headers: Record<string, string>;
  body: unknown;
}

export type HandlerOutcome =
  | { ok: true; body: unknown; durationMs: number }
  | { ok: false; kind: FailureKind; message: string; durationMs: number };

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Per-call limits. Node reserves a few GiB of address space at start (its code range and the
 * WebAssembly cage), so RLIMIT_AS must leave room for that; memory itself stays small.
 */
export const DEFAULT_HANDLER_LIMITS: Readonly<ProcessLimits> = Object.freeze({
  addressSpaceBytes: 4 * 1024 * MiB,
  cpuSeconds: 10,
  fileSizeBytes: 16 * MiB,
  openFiles: 256,
  processes: 64,
});

/** Largest response body a handler may write. */
export const MAX_HANDLER_OUTPUT_BYTES = 4 * MiB;

const RUNTIME_PROGRAMS: Record<HandlerRuntime, string> = {
  node: process.execPath,
  python3: "/usr/bin/python3",
  sh: "/bin/sh",
};

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export class HandlerRunner {
  constructor(
    private readonly o: {
      runner: SandboxedRunner;
      /** Where each call's directory is made (under DATA_DIR, which the sandbox hides). */
      workRoot: string;
      /**
       * Directories above workRoot the sandbox uid must traverse (DATA_DIR, DATA_DIR/endpoints): they
       * get o+x, never o+r, so nothing in them can be listed.
       */
      traverse?: string[];
      hiddenPaths: string[];
    },
  ) {}

  private ready: Promise<void> | undefined;

  /** Creates workRoot; the sandbox uid must be able to reach its directory: traverse (not list) the parents. */
  private async prepareRoot(): Promise<void> {
    try {
      await fs.mkdir(this.o.workRoot, { recursive: true, mode: 0o711 });
      for (const dir of [...(this.o.traverse ?? []), this.o.workRoot]) {
        const mode = (await fs.stat(dir)).mode & 0o7777;
        if ((mode & 0o011) !== 0o011) await fs.chmod(dir, mode | 0o011);
      }
    } catch (err) {
      this.ready = undefined;
      throw err;
    }
  }

  async run(handler: EndpointHandler, input: HandlerInput, signal?: AbortSignal): Promise<HandlerOutcome> {
    this.ready ??= this.prepareRoot();
    await this.ready;
    const dir = path.join(this.o.workRoot, randomUUID());
    await fs.mkdir(dir, { mode: 0o700 });
    try {
      await fs.writeFile(path.join(dir, handler.entrypoint), handler.source, { mode: 0o644, flag: "wx" });
      const program = RUNTIME_PROGRAMS[handler.runtime];
      const programDir = path.dirname(program);
      const result = await this.o.runner.run(
        {
          driver: handler.sandbox,
          argv: [program, handler.entrypoint],
          workspace: dir,
          stdin: JSON.stringify(input),
          env: { HOME: "/tmp", PATH: "/usr/bin:/bin" },
          limits: handler.limits,
          timeoutMs: handler.timeoutMs,
          maxStdoutBytes: MAX_HANDLER_OUTPUT_BYTES,
          hiddenPaths: this.o.hiddenPaths,
          // A node outside /usr (nvm, /usr/local) must be visible inside the minimal root.
          readOnlyPaths: programDir.startsWith("/usr/") || programDir === "/bin" ? [] : [path.dirname(programDir)],
        },
        signal,
      );
      return classify(result, handler);
    } finally {
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

const NETWORK_ERRORS =
  /ENETUNREACH|ECONNREFUSED|EAI_AGAIN|ENOTFOUND|Network is unreachable|Temporary failure in name resolution|Connection refused|getaddrinfo/i;
const WRITE_ERRORS = /EROFS|Read-only file system|EACCES.*(open|mkdir)|Permission denied/i;

function tail(text: string, chars = 600): string {
  const t = text.trim();
  return t.length > chars ? `...${t.slice(-chars)}` : t;
}

/** Turns a sandboxed run into a handler outcome. */
export function classify(r: SandboxedRunResult, handler: Pick<EndpointHandler, "timeoutMs">): HandlerOutcome {
  const durationMs = r.durationMs;
  const stderr = tail(r.stderr);
  const withStderr = (s: string) => (stderr ? `${s}: ${stderr}` : s);
  if (r.timedOut)
    return {
      ok: false,
      kind: "timeout",
      message: `the handler did not finish within ${handler.timeoutMs} ms`,
      durationMs,
    };
  if (r.outputLimitExceeded)
    return {
      ok: false,
      kind: "sandbox_violation",
      message: `the handler wrote more than ${MAX_HANDLER_OUTPUT_BYTES} bytes`,
      durationMs,
    };
  if (r.signal) {
    const limit = r.signal === "SIGXCPU" || r.signal === "SIGXFSZ" || r.signal === "SIGKILL";
    return {
      ok: false,
      kind: limit ? "sandbox_violation" : "handler_error",
      message: withStderr(`the handler was killed by ${r.signal}${limit ? " (a resource limit of its sandbox)" : ""}`),
      durationMs,
    };
  }
  if (r.exitCode !== 0) {
    if (NETWORK_ERRORS.test(r.stderr))
      return {
        ok: false,
        kind: "sandbox_violation",
        message: withStderr(
          `the handler tried to use the network, which its sandbox does not have (exit code ${r.exitCode})`,
        ),
        durationMs,
      };
    if (WRITE_ERRORS.test(r.stderr))
      return {
        ok: false,
        kind: "sandbox_violation",
        message: withStderr(`the handler tried to write outside its directory (exit code ${r.exitCode})`),
        durationMs,
      };
    return {
      ok: false,
      kind: "handler_error",
      message: withStderr(`the handler exited with code ${r.exitCode}`),
      durationMs,
    };
  }
  const text = r.stdout.toString("utf8").trim();
  if (!text) return { ok: false, kind: "invalid_json", message: "the handler wrote nothing on stdout", durationMs };
  try {
    return { ok: true, body: JSON.parse(text) as unknown, durationMs };
  } catch (err) {
    const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
    return {
      ok: false,
      kind: "invalid_json",
      message: `the handler's output is not JSON (${(err as Error).message}): ${JSON.stringify(shown)}`,
      durationMs,
    };
  }
}
