/**
 * Optional system tools (bwrap, rg, nsjail, prlimit, setpriv): found on PATH at
 * start-up, reported by /healthz, and named with their Debian package when a
 * feature needs one that is missing.
 */
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { GatewayError } from "../errors/gateway-error.js";

export const OPTIONAL_TOOLS = {
  bwrap: "bubblewrap",
  rg: "ripgrep",
  nsjail: "nsjail (build from source; not packaged in Debian bookworm)",
  prlimit: "util-linux",
  setpriv: "util-linux",
} as const;

export type ToolName = keyof typeof OPTIONAL_TOOLS;

export function findExecutable(name: string, pathEnv = process.env.PATH ?? ""): string | undefined {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export class SystemTools {
  private readonly found: Record<ToolName, string | undefined>;

  constructor(pathEnv = process.env.PATH ?? "") {
    this.found = Object.fromEntries(
      (Object.keys(OPTIONAL_TOOLS) as ToolName[]).map((t) => [t, findExecutable(t, pathEnv)]),
    ) as Record<ToolName, string | undefined>;
  }

  path(tool: ToolName): string | undefined {
    return this.found[tool];
  }

  /** The tool's path, or a failed_precondition error naming the package to install. */
  require(tool: ToolName, feature: string): string {
    const p = this.found[tool];
    if (!p) {
      throw new GatewayError(
        "failed_precondition",
        `${feature} needs \`${tool}\`, which is not installed: install ${OPTIONAL_TOOLS[tool]}`,
        {
          code: "missing_system_tool",
        },
      );
    }
    return p;
  }

  report(): Record<ToolName, string | null> {
    return Object.fromEntries(Object.entries(this.found).map(([k, v]) => [k, v ?? null])) as Record<
      ToolName,
      string | null
    >;
  }
}
