/**
 * ProcessLimits as prlimit(1) options. One value sets both the soft and the hard limit, so the
 * program cannot raise them again. RLIMIT_NPROC counts the processes of the real uid host-wide,
 * which is why the bwrap driver runs every agent under its own uid (see uid-pool.ts).
 */
import { GatewayError } from "../errors/gateway-error.js";
import type { ProcessLimits } from "./types.js";

const OPTIONS: Record<keyof ProcessLimits, string> = {
  addressSpaceBytes: "--as",
  cpuSeconds: "--cpu",
  fileSizeBytes: "--fsize",
  openFiles: "--nofile",
  processes: "--nproc",
};

/** prlimit options for the limits that are set; empty when none is. */
export function prlimitOptions(limits: ProcessLimits): string[] {
  const out: string[] = [];
  for (const key of Object.keys(OPTIONS) as Array<keyof ProcessLimits>) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new GatewayError("invalid_argument", `limits.${key} must be a positive integer, got ${value}`, {
        param: `limits.${key}`,
      });
    }
    out.push(`${OPTIONS[key]}=${value}`);
  }
  return out;
}
