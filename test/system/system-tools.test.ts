import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { SystemTools } from "../../src/system/system-tools.js";

describe("SystemTools", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "agentgate-tools-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("finds executables on PATH and reports missing ones as null", () => {
    const rg = path.join(dir, "rg");
    writeFileSync(rg, "#!/bin/sh\n");
    chmodSync(rg, 0o755);
    writeFileSync(path.join(dir, "bwrap"), "not executable"); // mode 0644: must not count
    const tools = new SystemTools(dir);
    expect(tools.path("rg")).toBe(rg);
    expect(tools.report()).toMatchObject({ rg, bwrap: null, nsjail: null });
  });

  it("a feature that needs a missing tool fails with failed_precondition naming the Debian package", () => {
    const tools = new SystemTools(dir);
    let err: unknown;
    try {
      tools.require("bwrap", "the bwrap sandbox");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).kind).toBe("failed_precondition");
    expect((err as GatewayError).message).toMatch(/install bubblewrap/);
    expect(tools.require("rg", "grep")).toBe(path.join(dir, "rg"));
  });
});
