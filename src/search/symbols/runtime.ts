import { createRequire } from "node:module";
import { Language, Parser } from "web-tree-sitter";

// Grammar wasm files are resolved through Node's resolver (never a hard-coded node_modules path), so a
// hoisted or nested install both work.
const require = createRequire(import.meta.url);

let initPromise: Promise<void> | undefined;
const languages = new Map<string, Promise<Language>>();

/** Initialises the tree-sitter runtime once per process (it instantiates a WASM module). */
export function initTreeSitter(): Promise<void> {
  initPromise ??= Parser.init().catch((err: unknown) => {
    initPromise = undefined; // allow a retry rather than caching the failure forever
    throw err;
  });
  return initPromise;
}

/** Absolute path of a grammar's wasm in @repomix/tree-sitter-wasms ("typescript" -> tree-sitter-typescript.wasm). */
export function grammarWasmPath(grammar: string): string {
  return require.resolve(`@repomix/tree-sitter-wasms/out/tree-sitter-${grammar}.wasm`);
}

/** Loads a grammar once; concurrent callers share the same promise. */
export function loadGrammar(grammar: string): Promise<Language> {
  let pending = languages.get(grammar);
  if (!pending) {
    pending = initTreeSitter()
      .then(() => Language.load(grammarWasmPath(grammar)))
      .catch((err: unknown) => {
        languages.delete(grammar);
        throw err;
      });
    languages.set(grammar, pending);
  }
  return pending;
}
