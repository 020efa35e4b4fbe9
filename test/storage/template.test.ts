import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/storage/database.js";
import {
  cacheDirCandidates,
  clearTemplateMemo,
  readTemplateTar,
  templateFileName,
  writeTemplateFile,
} from "../../src/storage/pglite-template.js";
import { tempDir } from "./helpers.js";

describe("PGlite template", () => {
  const tmp = tempDir();
  const cacheDir = path.join(tmp.dir, "cache");
  const templateFile = path.join(cacheDir, templateFileName());
  afterAll(() => {
    clearTemplateMemo();
    tmp.cleanup();
  });

  it("is built by initdb and cached atomically when missing, then restored for each fresh directory", async () => {
    // Empty cache: this start initialises a cluster, caches it as the template, restores from it.
    const first = await openDatabase({ dataDir: path.join(tmp.dir, "a"), cacheDir });
    expect(first.startup).toMatchObject({ source: "initdb", templateFile, templateWritten: true });
    await first.close();
    expect(fs.readdirSync(cacheDir)).toEqual([templateFileName()]); // no temp file left behind
    expect(templateFileName()).toMatch(/^pglite-0\.5\.14-pgvector-0\.0\.15-t\d+\.tar\.gz$/);

    // Read from disk (not the per-process memo) for the next fresh directory.
    clearTemplateMemo();
    const second = await openDatabase({ dataDir: path.join(tmp.dir, "b"), cacheDir });
    try {
      expect(second.startup).toMatchObject({ source: "template", templateFile, templateWritten: false });
      expect(second.startup.migrationsApplied.length).toBeGreaterThan(0);
      expect(second.vector).toBe("pgvector");
    } finally {
      await second.close();
    }

    const mem = await openDatabase({ dataDir: "", memory: true, cacheDir });
    expect(mem.startup).toMatchObject({ source: "template", location: ":memory:", templateFile });
    await mem.close();
  });

  it("rejects a truncated or foreign template file before PGlite sees it", async () => {
    const good = fs.readFileSync(templateFile);
    const truncated = path.join(tmp.dir, "truncated.tar.gz");
    fs.writeFileSync(truncated, good.subarray(0, good.length >> 1));
    await expect(readTemplateTar(truncated)).rejects.toThrow();
    const notTar = path.join(tmp.dir, "not-tar.tar.gz");
    const zlib = await import("node:zlib");
    fs.writeFileSync(notTar, zlib.gzipSync(Buffer.alloc(4096, 1)));
    await expect(readTemplateTar(notTar)).rejects.toThrow(/not a tar archive/);
  });

  it("prefers AGENTGATE_CACHE_DIR, else node_modules/.cache/agentgate then ~/.cache/agentgate", () => {
    expect(cacheDirCandidates({ env: { AGENTGATE_CACHE_DIR: "/x/c" } })).toEqual(["/x/c"]);
    expect(cacheDirCandidates({ env: {}, projectRoot: "/p", home: "/h" })).toEqual([
      "/p/node_modules/.cache/agentgate",
      "/h/.cache/agentgate",
    ]);
    expect(cacheDirCandidates({ env: { XDG_CACHE_HOME: "/xdg" }, projectRoot: "/p", home: "/h" })[1]).toBe(
      "/xdg/agentgate",
    );
  });

  it("falls back to the next cache directory when the first is not writable", () => {
    const blocker = path.join(tmp.dir, "not-a-dir");
    fs.writeFileSync(blocker, "");
    const fallback = path.join(tmp.dir, "fallback");
    const r = writeTemplateFile(new Uint8Array([1, 2, 3]), [path.join(blocker, "cache"), fallback]);
    expect(r.file).toBe(path.join(fallback, templateFileName()));
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/ENOTDIR/);
    expect(writeTemplateFile(new Uint8Array([1]), [path.join(blocker, "x")]).file).toBeUndefined();
  });
});
