/**
 * Finds the Codex CLI: CODEX_BIN when set, else the bundled optional dependency `@openai/codex`
 * (its `bin/codex.js` run with this Node, so no PATH or shebang is involved), else `codex` on PATH.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { GatewayError } from "../../errors/gateway-error.js";

export interface CodexCommand {
  /** What to spawn. */
  command: string;
  /** Arguments that come before Codex's own (the script path when run through Node). */
  prefix: string[];
  /** For messages and /healthz: where it was found. */
  source: string;
}

const require = createRequire(import.meta.url);

export const CODEX_MISSING_MESSAGE =
  "the Codex CLI was not found: install the optional dependency @openai/codex (npm install @openai/codex) " +
  "or set CODEX_BIN to the codex executable";

export function missingCodex(detail?: string): GatewayError {
  return new GatewayError(
    "failed_precondition",
    detail ? `${CODEX_MISSING_MESSAGE} (${detail})` : CODEX_MISSING_MESSAGE,
    {
      code: "codex_not_found",
    },
  );
}

/** Throws GatewayError failed_precondition when there is no Codex to run. */
export function locateCodex(bin: string | undefined, env: NodeJS.ProcessEnv = process.env): CodexCommand {
  if (bin) {
    // A bare name is looked up on PATH now, so a typo fails with the install hint rather than ENOENT later.
    const found = bin.includes("/") ? (isExecutable(bin) ? path.resolve(bin) : undefined) : onPath(bin, env);
    if (!found) throw missingCodex(`CODEX_BIN=${bin} is not an executable file`);
    return { command: found, prefix: [], source: `CODEX_BIN ${found}` };
  }
  const bundled = bundledScript();
  if (bundled) return { command: process.execPath, prefix: [bundled], source: `@openai/codex (${bundled})` };
  const onPathFound = onPath("codex", env);
  if (onPathFound) return { command: onPathFound, prefix: [], source: onPathFound };
  throw missingCodex();
}

function bundledScript(): string | undefined {
  try {
    return require.resolve("@openai/codex/bin/codex.js");
  } catch {
    return undefined;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
