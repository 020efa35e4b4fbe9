/**
 * ApplyPatch: a unified diff applied to files in a root, all or nothing. Every path is
 * resolved and every hunk applied in memory first; only then are the new contents staged
 * beside their targets and renamed into place, so a hunk that fails leaves every file as it was.
 */
import { mkdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { GatewayError } from "../../errors/gateway-error.js";
import { looksBinary, sha256Hex } from "../files/text.js";
import type { ResolvedPath, SearchRoots } from "../roots.js";
import { commitStaged, discardStaged, stageFile } from "./atomic.js";
import { DEFAULT_MAX_PATCH_BYTES, DEFAULT_MAX_WRITE_BYTES, type ChangedPath, type WriteOptions } from "./types.js";
import { applyHunks, fromLines, parseUnifiedDiff, PatchError, toLines, type FilePatch } from "./unified-diff.js";
import { requireWritable } from "./write-file.js";

export interface ApplyPatchInput {
  root?: string;
  patch: string;
  dryRun?: boolean;
}

export type PatchChangeKind = "add" | "modify" | "delete" | "rename";

export interface PatchedFile {
  path: string;
  oldPath: string;
  kind: PatchChangeKind;
  hunks: number;
  /** Empty for deleted files. */
  sha256: string;
}

export interface ApplyPatchResult {
  files: PatchedFile[];
  applied: boolean;
}

interface Slot {
  resolved: ResolvedPath;
  /** Content after the patch so far; null once deleted. */
  content: string | null;
  existed: boolean;
}

export async function applyPatch(
  roots: SearchRoots,
  input: ApplyPatchInput,
  opts: WriteOptions,
): Promise<ApplyPatchResult> {
  requireWritable(opts);
  const maxPatch = opts.maxPatchBytes ?? DEFAULT_MAX_PATCH_BYTES;
  const maxFile = opts.maxFileBytes ?? DEFAULT_MAX_WRITE_BYTES;
  if (Buffer.byteLength(input.patch ?? "") > maxPatch) {
    throw new GatewayError("invalid_argument", `patch is larger than ${maxPatch} bytes`, { param: "patch" });
  }
  let patches: FilePatch[];
  try {
    patches = parseUnifiedDiff(input.patch ?? "");
  } catch (err) {
    if (err instanceof PatchError) throw new GatewayError("invalid_argument", err.message, { param: "patch" });
    throw err;
  }
  const root = roots.get(input.root);
  const slots = new Map<string, Slot>();
  const slot = async (p: string): Promise<Slot> => {
    const resolved = await roots.resolve(p, { root: root.name, field: "patch" });
    let s = slots.get(resolved.abs);
    if (!s) {
      let content: string | null = null;
      if (resolved.stats) {
        if (!resolved.stats.isFile()) {
          throw new GatewayError("invalid_argument", `${resolved.rel} is not a regular file`, { param: "patch" });
        }
        if (resolved.stats.size > maxFile) {
          throw new GatewayError("failed_precondition", `${resolved.rel} is larger than ${maxFile} bytes`, {
            param: "patch",
          });
        }
        const buf = await readFile(resolved.abs);
        if (looksBinary(buf)) {
          throw new GatewayError("failed_precondition", `${resolved.rel} is binary; patches apply to text`, {
            param: "patch",
          });
        }
        content = buf.toString("utf8");
      }
      s = { resolved, content, existed: content !== null };
      slots.set(resolved.abs, s);
    }
    return s;
  };

  const files: PatchedFile[] = [];
  const changed: ChangedPath[] = [];
  for (const fp of patches) {
    const src = fp.oldPath !== undefined ? await slot(fp.oldPath) : undefined;
    const dst = fp.newPath !== undefined ? await slot(fp.newPath) : undefined;
    const label = (dst ?? src)!.resolved.rel;
    if (src && src.content === null) {
      throw new GatewayError("failed_precondition", `${src.resolved.rel} does not exist`, { param: "patch" });
    }
    if (!src && dst!.content !== null) {
      throw new GatewayError("failed_precondition", `${dst!.resolved.rel} already exists`, { param: "patch" });
    }
    const isRename = !!src && !!dst && src !== dst;
    if (isRename && dst.content !== null) {
      throw new GatewayError("failed_precondition", `cannot rename onto existing ${dst.resolved.rel}`, {
        param: "patch",
      });
    }
    let next: string;
    try {
      next = fromLines(applyHunks(toLines(src?.content ?? ""), fp.hunks, label));
    } catch (err) {
      if (err instanceof PatchError) {
        throw new GatewayError("failed_precondition", err.message, { param: "patch", code: "patch_does_not_apply" });
      }
      throw err;
    }
    if (Buffer.byteLength(next) > maxFile) {
      throw new GatewayError("failed_precondition", `${label} would be larger than ${maxFile} bytes`, {
        param: "patch",
      });
    }
    let kind: PatchChangeKind;
    if (!dst) {
      if (next !== "") {
        throw new GatewayError(
          "failed_precondition",
          `deleting ${label}: the patch does not remove all of its content`,
          {
            param: "patch",
            code: "patch_does_not_apply",
          },
        );
      }
      src!.content = null;
      kind = "delete";
    } else {
      if (isRename) src!.content = null;
      dst.content = next;
      kind = !src ? "add" : isRename ? "rename" : "modify";
    }
    files.push({
      path: (dst ?? src)!.resolved.rel,
      oldPath: src?.resolved.rel ?? "",
      kind,
      hunks: fp.hunks.length,
      sha256: dst ? sha256Hex(next) : "",
    });
  }
  if (input.dryRun) return { files, applied: false };

  // Stage every new content first; a failure here removes the staged files and changes nothing.
  const staged: { tmp: string; target: string }[] = [];
  try {
    for (const s of slots.values()) {
      if (s.content === null) continue;
      await mkdir(path.dirname(s.resolved.abs), { recursive: true });
      staged.push({ tmp: await stageFile(s.resolved.abs, Buffer.from(s.content, "utf8")), target: s.resolved.abs });
    }
  } catch (err) {
    await discardStaged(staged.map((s) => s.tmp));
    throw err;
  }
  for (const s of staged) await commitStaged(s.tmp, s.target);
  for (const s of slots.values()) {
    if (s.content === null && s.existed) await unlink(s.resolved.abs).catch(() => {});
    if (s.content === null && !s.existed) continue;
    changed.push({ path: s.resolved.rel, kind: s.content === null ? "delete" : s.existed ? "modify" : "add" });
  }
  await opts.onChange?.({ root: root.name, paths: changed });
  return { files, applied: true };
}
