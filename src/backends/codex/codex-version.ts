/**
 * `codex --version`, run once per executable and cached: /healthz probes every few seconds and
 * starting Codex costs a process (through the bundled package: Node, then the native binary).
 * A failure is not cached, so a fixed installation shows up on the next probe.
 */
import { execFile } from "node:child_process";
import type { CancelSignal } from "../../util/cancel-signal.js";
import type { CodexCommand } from "./locate-codex.js";

const VERSION_TIMEOUT_MS = 10_000;
const cache = new Map<string, Promise<string>>();

export function codexVersion(command: CodexCommand, env: NodeJS.ProcessEnv, signal: CancelSignal): Promise<string> {
  const key = [command.command, ...command.prefix].join("\0");
  let version = cache.get(key);
  if (!version) {
    version = run(command, env);
    cache.set(key, version);
    version.catch(() => cache.delete(key));
  }
  return untilAborted(version, signal);
}

function run(command: CodexCommand, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command.command,
      [...command.prefix, "--version"],
      { env, timeout: VERSION_TIMEOUT_MS, killSignal: "SIGKILL" },
      (err, stdout, stderr) => {
        const line = String(stdout).trim().split("\n")[0] ?? "";
        if (err || !line) {
          const why = String(stderr).trim().split("\n").pop() || (err ? err.message : "no output");
          reject(new Error(`\`codex --version\` failed (${command.source}): ${why}`));
        } else resolve(line);
      },
    );
  });
}

function untilAborted<T>(p: Promise<T>, signal: CancelSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const listener = { handleEvent: () => reject(signal.reason) };
    signal.addEventListener("abort", listener, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", listener));
  });
}
