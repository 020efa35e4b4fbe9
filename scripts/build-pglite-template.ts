/**
 * Builds the pre-initialised PGlite template into the cache (see src/storage/pglite-template.ts) so the
 * first `npm start` restores it instead of running initdb. Run by `postinstall`: it always exits 0 and
 * prints exactly one line, because a failure here must never break `npm install` (the server then
 * builds the template on its first fresh start instead).
 *
 *   tsx scripts/build-pglite-template.ts [--force]
 *   AGENTGATE_SKIP_PGLITE_TEMPLATE=1 skips it; AGENTGATE_CACHE_DIR chooses the cache directory.
 */
const started = performance.now();
const secs = (): string => `${((performance.now() - started) / 1000).toFixed(1)} s`;

async function main(): Promise<string> {
  if (process.env.AGENTGATE_SKIP_PGLITE_TEMPLATE === "1") {
    return "agentgate: PGlite template skipped (AGENTGATE_SKIP_PGLITE_TEMPLATE=1)";
  }
  const { buildTemplate } = await import("../src/storage/pglite-template.js");
  const r = await buildTemplate({ force: process.argv.includes("--force") });
  if (!r.file) {
    return `agentgate: PGlite template built but not saved (${r.errors.join("; ")}); the first start will initialise the database itself`;
  }
  return r.built
    ? `agentgate: PGlite template written to ${r.file} in ${secs()}`
    : `agentgate: PGlite template already present at ${r.file}`;
}

let line: string;
try {
  line = await main();
} catch (err) {
  line = `agentgate: PGlite template not built (${err instanceof Error ? err.message : String(err)}); the first start will initialise the database itself`;
}
console.log(line.replace(/\s*\n\s*/g, " "));
process.exit(0);
