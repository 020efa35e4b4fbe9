/**
 * Input checks shared by the drivers. Everything here reaches exec(2) as argv or environment
 * strings, which cannot carry NUL bytes; rejecting them here gives a clear invalid_argument instead
 * of a native exception from node-pty.
 */
import { GatewayError } from "../errors/gateway-error.js";
import type { SandboxSpec } from "./types.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkSpec(spec: SandboxSpec): void {
  if (spec.argv.length === 0 || spec.argv[0] === "") {
    throw new GatewayError("invalid_argument", "argv must name a program", { param: "argv" });
  }
  spec.argv.forEach((a, i) => noNul(a, `argv[${i}]`));
  for (const [name, value] of Object.entries(spec.env)) {
    // bwrap --setenv and execve both take NAME=VALUE; a name with "=" or a NUL would be mangled.
    if (!ENV_NAME.test(name))
      throw new GatewayError("invalid_argument", `bad environment variable name ${JSON.stringify(name)}`, {
        param: "env",
      });
    noNul(value, `env.${name}`);
  }
  noNul(spec.workspace, "workspace");
  spec.hiddenPaths.forEach((p, i) => noNul(p, `hiddenPaths[${i}]`));
  (spec.readOnlyPaths ?? []).forEach((p, i) => noNul(p, `readOnlyPaths[${i}]`));
  if (spec.uid !== undefined && (!Number.isInteger(spec.uid) || spec.uid < 1 || spec.uid > 0xfffffffe)) {
    throw new GatewayError("invalid_argument", `sandbox uid ${spec.uid} is not an unprivileged uid`, { param: "uid" });
  }
}

function noNul(value: string, param: string): void {
  if (value.includes("\0")) throw new GatewayError("invalid_argument", `${param} contains a NUL byte`, { param });
}
