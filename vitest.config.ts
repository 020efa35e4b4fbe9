import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = dirname(fileURLToPath(import.meta.url));

// Contract-test inputs come only from the caller's environment (.ci/run sets them to ../shared/specs/...);
// nothing is defaulted here. Relative paths are made absolute against the project root so that the
// forked workers resolve them the same way whatever their working directory.
// AGENTGATE_TX_GUARD turns on the storage layer's check against db calls inside a transaction
// callback (off in production for its cost; see src/storage/common.ts).
const env: Record<string, string> = { AGENTGATE_TX_GUARD: "1" };
for (const name of ["OPENAI_OPENAPI_SPEC", "QDRANT_OPENAPI_SPEC"] as const) {
  const value = process.env[name];
  if (value) env[name] = resolve(root, value);
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Child processes and native modules (PTYs, sandboxes, PGlite) need real processes, not worker threads.
    pool: "forks",
    watch: false,
    env,
    // VITEST_JSON_REPORT=<file> (set by .ci/run) also writes a JSON report, from which .ci/run prints
    // the plain "N passed, N failed" line CI reads.
    ...(process.env.VITEST_JSON_REPORT
      ? { reporters: ["default", "json"], outputFile: { json: process.env.VITEST_JSON_REPORT } }
      : {}),
  },
});
