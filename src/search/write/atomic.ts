/**
 * Atomic file replacement: the new content goes to a temporary file in the same directory
 * (same filesystem), is flushed, then renamed over the target, so readers see the old file or
 * the new one, never half of either.
 */
import { randomBytes } from "node:crypto";
import { open, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";

/** Writes data to a fresh temporary file beside target; returns its path. */
export async function stageFile(target: string, data: Uint8Array): Promise<string> {
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.agentgate-${randomBytes(6).toString("hex")}.tmp`,
  );
  let mode = 0o644;
  try {
    mode = (await stat(target)).mode & 0o777;
  } catch {
    // new file
  }
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  return tmp;
}

export async function commitStaged(tmp: string, target: string): Promise<void> {
  await rename(tmp, target);
}

export async function discardStaged(tmps: Iterable<string>): Promise<void> {
  for (const t of tmps) await unlink(t).catch(() => {});
}

export async function atomicWrite(target: string, data: Uint8Array): Promise<void> {
  const tmp = await stageFile(target, data);
  try {
    await commitStaged(tmp, target);
  } catch (err) {
    await discardStaged([tmp]);
    throw err;
  }
}
