/** Picks the sandbox driver for a spec's `driver` name. */
import { GatewayError } from "../errors/gateway-error.js";
import type { SystemTools } from "../system/system-tools.js";
import { BwrapDriver, type BwrapDriverOptions } from "./bwrap-driver.js";
import { NoneDriver } from "./none-driver.js";
import type { SandboxDriver, SandboxDriverName } from "./types.js";

export function sandboxDriver(
  name: SandboxDriverName,
  tools: SystemTools,
  options: BwrapDriverOptions = {},
): SandboxDriver {
  switch (name) {
    case "none":
      return new NoneDriver(tools);
    case "bwrap":
      return new BwrapDriver(tools, options);
    case "nsjail":
      return new NsjailUnsupported(tools);
    default:
      throw new GatewayError("invalid_argument", `unknown sandbox driver ${JSON.stringify(name)}`, {
        param: "sandbox",
      });
  }
}

/**
 * nsjail is accepted by the API but not implemented yet: preparing fails with failed_precondition,
 * naming the package when nsjail is not installed at all. (bwrap covers the same ground; nsjail's
 * counterpart of leaving out --new-session would be `skip_setsid`.)
 */
class NsjailUnsupported implements SandboxDriver {
  readonly name = "nsjail" as const;

  constructor(private readonly tools: SystemTools) {}

  prepare(): never {
    this.tools.require("nsjail", "the nsjail sandbox");
    throw new GatewayError("failed_precondition", "the nsjail sandbox is not supported yet; use bwrap", {
      code: "sandbox_unsupported",
    });
  }
}
