/**
 * CODEX_HOME is where Codex keeps its login, provider config and thread rollouts (default ~/.codex).
 * agentgate passes the environment through unchanged and only refuses a home under the temporary
 * directory: Codex 0.169.0 refuses to create its sandbox helper binaries there ("Refusing to create
 * helper binaries under temporary dir"), which would fail sandboxed commands in the middle of a turn.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { GatewayError } from "../../errors/gateway-error.js";

export function resolveCodexHome(env: NodeJS.ProcessEnv): string {
  const home = path.resolve(env.CODEX_HOME || path.join(os.homedir(), ".codex"));
  // The temporary directory as Codex sees it (Rust's temp_dir: $TMPDIR, else /tmp), not ours.
  const tmp = realpath(env.TMPDIR || "/tmp");
  if (isInside(realpath(home), tmp)) {
    throw new GatewayError(
      "failed_precondition",
      `CODEX_HOME (${home}) is inside the temporary directory ${tmp}: Codex refuses to create its helper ` +
        `binaries there ("Refusing to create helper binaries under temporary dir"). Point CODEX_HOME at a ` +
        `directory outside ${tmp} (the default is ~/.codex).`,
      { code: "codex_home_in_tmp" },
    );
  }
  return home;
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest (p may not exist yet). */
function realpath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    const parent = path.dirname(p);
    return parent === p ? p : path.join(realpath(parent), path.basename(p));
  }
}
