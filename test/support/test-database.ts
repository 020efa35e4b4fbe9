/**
 * A fresh, migrated, in-memory PGlite database for tests (~0.5 s: restored from the cached template,
 * which the first call builds if it is missing). Close it in afterAll/afterEach.
 *
 *   let db: Database;
 *   beforeAll(async () => { db = await openTestDatabase(); });
 *   afterAll(() => db.close());
 */
import { openDatabase, type Database, type Migration } from "../../src/storage/database.js";

export async function openTestDatabase(opts: { migrations?: Migration[] } = {}): Promise<Database> {
  return openDatabase({ dataDir: ":memory:", memory: true, migrations: opts.migrations });
}
