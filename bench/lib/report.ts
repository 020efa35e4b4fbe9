/** The end every bench shares: agentgate's warnings, then the figures on stdout or in a file. */
import { writeFileSync } from "node:fs";
import type { Child } from "./processes.js";

export function reportFigures(
  gate: Child,
  results: Record<string, unknown>,
  jsonPath: string | undefined,
  log: (s: string) => void,
): void {
  const warnings = gate
    .tail()
    .split("\n")
    .filter((l) => /"level":(40|50|60)/.test(l));
  if (warnings.length) log(`agentgate logged ${warnings.length} warnings/errors, last: ${warnings.at(-1)}`);
  if (jsonPath) {
    writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
    log(`figures written to ${jsonPath}`);
  }
  console.log(`\n(run took ${String(results.seconds)} s)`);
  // The last stdout line is the figures as JSON unless they went to a file.
  if (!jsonPath) console.log(JSON.stringify(results));
}
