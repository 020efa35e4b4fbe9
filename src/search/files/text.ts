/**
 * Text helpers shared by ReadFile, grep and the writers: binary detection, language names and
 * content hashes.
 */
import { createHash } from "node:crypto";
import path from "node:path";

/** Bytes inspected by the binary heuristic (git and ripgrep look at a prefix too). */
const SNIFF_BYTES = 8192;

/**
 * True when the content looks binary: a NUL byte in the first 8 KiB, or a prefix that is not
 * valid UTF-8 (allowing a sequence cut at the sniff boundary).
 */
export function looksBinary(buf: Uint8Array): boolean {
  const n = Math.min(buf.length, SNIFF_BYTES);
  for (let i = 0; i < n; i++) if (buf[i] === 0) return true;
  return !isValidUtf8(buf.subarray(0, n), n < buf.length);
}

function isValidUtf8(b: Uint8Array, mayBeCut: boolean): boolean {
  try {
    // stream: a multi-byte sequence cut at the sniff boundary is held back, not an error.
    new TextDecoder("utf-8", { fatal: true }).decode(b, { stream: mayBeCut });
    return true;
  } catch {
    return false;
  }
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

const LANGUAGES: Record<string, string> = {
  ".ts": "typescript",
  ".tsx": "tsx",
  ".mts": "typescript",
  ".cts": "typescript",
  ".js": "javascript",
  ".jsx": "javascript",
  ".mjs": "javascript",
  ".cjs": "javascript",
  ".py": "python",
  ".pyi": "python",
  ".go": "go",
  ".rs": "rust",
  ".java": "java",
  ".c": "c",
  ".h": "c",
  ".cc": "cpp",
  ".cpp": "cpp",
  ".hpp": "cpp",
  ".rb": "ruby",
  ".php": "php",
  ".cs": "csharp",
  ".swift": "swift",
  ".kt": "kotlin",
  ".sh": "bash",
  ".bash": "bash",
  ".json": "json",
  ".yaml": "yaml",
  ".yml": "yaml",
  ".toml": "toml",
  ".md": "markdown",
  ".html": "html",
  ".css": "css",
  ".sql": "sql",
  ".proto": "protobuf",
};

/** The language of a file by its extension, "" when unknown. */
export function languageOf(file: string): string {
  return LANGUAGES[path.extname(file).toLowerCase()] ?? "";
}

/** Splits text into lines that keep their endings ("a\n", "b"); "" has no lines. */
export function splitLinesKeepEnds(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf("\n", start);
    if (nl < 0) break;
    out.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}
