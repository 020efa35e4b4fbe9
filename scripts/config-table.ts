/**
 * Prints README's configuration table from the settings table, so the docs
 * cannot drift from what the code reads: `npx tsx scripts/config-table.ts`.
 * test/docs/readme.test.ts fails when README.md holds a different table.
 */
import { configTableMarkdown } from "../src/config/config-table.js";

process.stdout.write(`${configTableMarkdown()}\n`);
