/**
 * WriteFile: replaces or creates one file inside a root, atomically, only when writes are
 * enabled, never under `.git/` (roots.resolve refuses it), with a size cap and an optional
 * content-hash precondition (the earlier bridge could write `.git/hooks`, seed-systems.md §5.6).
 */
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { GatewayError } from "../../errors/gateway-error.js";
import { sha256Hex } from "../files/text.js";
import type { SearchRoots } from "../roots.js";
import { atomicWrite } from "./atomic.js";
import { DEFAULT_MAX_WRITE_BYTES, type WriteOptions } from "./types.js";

export interface WriteFileInput {
  root?: string;
  path: string;
  content: string;
  /** Current hex SHA-256 required; "" requires that the file does not exist; undefined: no check. */
  expectedSha256?: string;
  createParents?: boolean;
}

export interface WriteFileResult {
  root: string;
  path: string;
  sizeBytes: number;
  sha256: string;
  created: boolean;
}

export function requireWritable(opts: WriteOptions): void {
  if (!opts.writeEnabled) {
    throw new GatewayError("permission_denied", "writing files is disabled; set SEARCH_WRITE=true to allow it", {
      code: "write_disabled",
    });
  }
}

export async function writeFileAtomic(
  roots: SearchRoots,
  input: WriteFileInput,
  opts: WriteOptions,
): Promise<WriteFileResult> {
  requireWritable(opts);
  const data = Buffer.from(input.content ?? "", "utf8");
  const max = opts.maxFileBytes ?? DEFAULT_MAX_WRITE_BYTES;
  if (data.length > max) {
    throw new GatewayError("invalid_argument", `content is larger than ${max} bytes`, { param: "content" });
  }
  const r = await roots.resolve(input.path, { root: input.root });
  if (r.rel === "") throw new GatewayError("invalid_argument", "path names the root directory", { param: "path" });
  if (r.stats && !r.stats.isFile()) {
    throw new GatewayError("invalid_argument", `${r.rel} exists and is not a regular file`, { param: "path" });
  }
  const created = !r.stats;
  if (input.expectedSha256 !== undefined) {
    const want = input.expectedSha256.toLowerCase();
    if (want === "" && !created) {
      throw new GatewayError("aborted", `${r.rel} already exists (expected_sha256 was empty)`, {
        param: "expected_sha256",
        code: "sha256_mismatch",
      });
    }
    if (want !== "") {
      const current = created ? "" : sha256Hex(await readFile(r.abs));
      if (current !== want) {
        throw new GatewayError(
          "aborted",
          created ? `${r.rel} does not exist` : `${r.rel} changed: its sha256 is ${current}`,
          { param: "expected_sha256", code: "sha256_mismatch" },
        );
      }
    }
  }
  const dir = path.dirname(r.abs);
  if (input.createParents) {
    await mkdir(dir, { recursive: true });
  }
  try {
    await atomicWrite(r.abs, data);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new GatewayError("not_found", `the directory of ${r.rel} does not exist (set create_parents)`, {
        param: "path",
      });
    }
    throw err;
  }
  await opts.onChange?.({ root: r.root.name, paths: [{ path: r.rel, kind: created ? "add" : "modify" }] });
  return { root: r.root.name, path: r.rel, sizeBytes: data.length, sha256: sha256Hex(data), created };
}
