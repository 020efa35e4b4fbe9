import { Parser, Query, type Node } from "web-tree-sitter";
import { SymbolKind } from "../../../gen/agentgate/v1/search_service_pb.js";
import { languageForPath, type LanguageSpec } from "./languages.js";
import { loadGrammar } from "./runtime.js";
import type { CodeSymbolInfo } from "./types.js";

/** Sources larger than this (UTF-16 code units) are not parsed: generated or minified files, mostly. */
export const DEFAULT_MAX_SOURCE_CHARS = 1_000_000;
/** Wall-clock budget for parsing plus querying one file. */
export const DEFAULT_PARSE_TIMEOUT_MS = 2_000;
const SIGNATURE_MAX = 200;

export interface ExtractOptions {
  maxSourceChars?: number;
  timeoutMs?: number;
}

export type ExtractStatus = "ok" | "unsupported" | "too_large" | "binary" | "timeout" | "error";

export interface SymbolExtraction {
  /** Language id when the path has a grammar, else undefined. */
  language?: string;
  symbols: CodeSymbolInfo[];
  /**
   * Declarations that only group others and have no symbol kind (Rust `impl` blocks, kind UNSPECIFIED):
   * not reported by FindSymbols, but the chunker keeps them together.
   */
  blocks: CodeSymbolInfo[];
  /** Why symbols may be missing; anything but "ok" means the caller should fall back (e.g. to line chunks). */
  status: ExtractStatus;
  error?: string;
}

interface Compiled {
  parser: Parser;
  query: Query;
}

// One parser and one compiled query per grammar for the life of the process: compiling a query costs
// milliseconds, and parsing is synchronous, so sharing them across callers is safe.
const compiled = new Map<string, Promise<Compiled>>();

function compiledFor(spec: LanguageSpec): Promise<Compiled> {
  let pending = compiled.get(spec.grammar);
  if (!pending) {
    pending = loadGrammar(spec.grammar).then((language) => {
      const parser = new Parser();
      parser.setLanguage(language);
      return { parser, query: new Query(language, spec.query) };
    });
    pending.catch(() => compiled.delete(spec.grammar));
    compiled.set(spec.grammar, pending);
  }
  return pending;
}

/** Symbols declared in a file; [] when the language is unknown or the file cannot be parsed in budget. */
export async function extractSymbols(
  path: string,
  source: string,
  options?: ExtractOptions,
): Promise<CodeSymbolInfo[]> {
  return (await parseSymbols(path, source, options)).symbols;
}

/** Like extractSymbols, but says why symbols may be missing. Never throws for bad input. */
export async function parseSymbols(
  path: string,
  source: string,
  options: ExtractOptions = {},
): Promise<SymbolExtraction> {
  const spec = languageForPath(path);
  if (!spec) return { symbols: [], blocks: [], status: "unsupported" };
  const language = spec.id;
  if (source.length > (options.maxSourceChars ?? DEFAULT_MAX_SOURCE_CHARS)) {
    return { language, symbols: [], blocks: [], status: "too_large" };
  }
  // NUL bytes mean a binary file that happens to carry a source extension.
  if (source.includes("\u0000")) return { language, symbols: [], blocks: [], status: "binary" };
  let c: Compiled;
  try {
    c = await compiledFor(spec);
  } catch (err) {
    return { language, symbols: [], blocks: [], status: "error", error: (err as Error).message };
  }
  return runExtraction(c, spec, path, source, options.timeoutMs ?? DEFAULT_PARSE_TIMEOUT_MS);
}

function runExtraction(
  c: Compiled,
  spec: LanguageSpec,
  path: string,
  source: string,
  timeoutMs: number,
): SymbolExtraction {
  const language = spec.id;
  const deadline = performance.now() + timeoutMs;
  let timedOut = false;
  // Returning true from a progress callback cancels the parse or the query cursor.
  const progressCallback = (): boolean => {
    if (performance.now() > deadline) timedOut = true;
    return timedOut;
  };
  let tree;
  try {
    tree = c.parser.parse(source, null, { progressCallback });
  } catch (err) {
    c.parser.reset();
    return { language, symbols: [], blocks: [], status: "error", error: (err as Error).message };
  }
  if (!tree) {
    // A cancelled parse would otherwise resume on the next call with different text.
    c.parser.reset();
    return { language, symbols: [], blocks: [], status: timedOut ? "timeout" : "error" };
  }
  try {
    const matches = c.query.matches(tree.rootNode, { progressCallback });
    if (timedOut) return { language, symbols: [], blocks: [], status: "timeout" };
    return { language, ...buildSymbols(matches, spec, path, source), status: "ok" };
  } catch (err) {
    return { language, symbols: [], blocks: [], status: "error", error: (err as Error).message };
  } finally {
    tree.delete(); // trees live in WASM memory; the JS GC never frees them
  }
}

type KindName =
  | "function"
  | "method"
  | "class"
  | "interface"
  | "type"
  | "enum"
  | "struct"
  | "trait"
  | "impl"
  | "module"
  | "constant"
  | "variable"
  | "macro";

const KIND: Record<Exclude<KindName, "impl">, SymbolKind> = {
  function: SymbolKind.FUNCTION,
  method: SymbolKind.METHOD,
  class: SymbolKind.CLASS,
  interface: SymbolKind.INTERFACE,
  type: SymbolKind.TYPE,
  enum: SymbolKind.ENUM,
  struct: SymbolKind.STRUCT,
  trait: SymbolKind.TRAIT,
  module: SymbolKind.MODULE,
  constant: SymbolKind.CONSTANT,
  variable: SymbolKind.VARIABLE,
  macro: SymbolKind.MACRO,
};

const TYPE_LIKE = new Set<KindName>(["class", "interface", "struct", "trait", "impl", "enum"]);
const CALLABLE = new Set<KindName>(["function", "method"]);
// Nodes that wrap a declaration without changing what it is; the symbol's range covers them.
const WRAPPERS = new Set(["export_statement", "ambient_declaration", "decorated_definition", "template_declaration"]);
const FUNCTION_VALUES = new Set(["arrow_function", "function_expression", "generator_function", "function"]);
const CLASS_VALUES = new Set(["class", "class_expression"]);
const GO_SPECS = new Set(["type_spec", "type_alias", "const_spec", "var_spec"]);

interface Def {
  node: Node;
  kind: KindName;
  name: string;
  /** Container forced by the syntax (Go receiver type, C++ `Foo::bar`). */
  container?: string;
  /** Named with a `Scope::` qualifier (C++). */
  qualified?: boolean;
}

type Match = ReturnType<Query["matches"]>[number];

function buildSymbols(
  matches: Match[],
  spec: LanguageSpec,
  path: string,
  source: string,
): { symbols: CodeSymbolInfo[]; blocks: CodeSymbolInfo[] } {
  const defs: Def[] = [];
  const firstById = new Map<number, Def>();
  const seen = new Set<string>();
  for (const m of matches) {
    const def = m.captures.find((cap) => cap.name.startsWith("def."));
    if (!def) continue;
    const receiver = m.captures.find((cap) => cap.name === "receiver");
    for (const cap of m.captures) {
      if (cap.name !== "name") continue;
      let name = cleanName(cap.node.text);
      let container = receiver ? baseTypeName(receiver.node.text) : undefined;
      let qualified = false;
      const kind = def.name.slice(4) as KindName;
      if (kind === "impl") name = baseTypeName(name);
      else if (name.includes("::")) {
        // C++ out-of-line definition `void Foo::bar()`: the qualifier is the container.
        const parts = name.split("::");
        name = parts.pop() ?? name;
        container ??= baseTypeName(parts.join("::"));
        qualified = true;
      }
      if (!name) continue;
      const key = `${def.node.id}:${name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const d: Def = { node: def.node, kind, name, container, qualified };
      defs.push(d);
      if (!firstById.has(def.node.id)) firstById.set(def.node.id, d);
    }
  }

  const out: CodeSymbolInfo[] = [];
  const blocks: CodeSymbolInfo[] = [];
  for (const d of defs) {
    const parent = enclosingDef(d.node, firstById);
    let kind = refineKind(d, spec);
    const containerKind = parent ? refineKind(parent, spec) : undefined;
    if (kind === "function" && containerKind && TYPE_LIKE.has(containerKind)) kind = "method";
    if (kind === "method" && !parent && !d.container) kind = "function";
    // `void Foo::bar() {}` defines a member out of line (namespaces are normally opened, not qualified).
    if (kind === "function" && d.qualified) kind = "method";
    // Locals inside function bodies are not worth indexing.
    if ((kind === "variable" || kind === "constant") && containerKind && CALLABLE.has(containerKind)) continue;
    const range = rangeNode(d.node);
    let startRow = range.startPosition.row;
    for (
      let prev = range.previousNamedSibling;
      prev && spec.leadingTypes.has(prev.type);
      prev = prev.previousNamedSibling
    ) {
      startRow = prev.startPosition.row;
    }
    const end = range.endPosition;
    // Some grammars end a node at column 0 of the next line (its trailing newline).
    const endRow = end.column === 0 && end.row > startRow ? end.row - 1 : end.row;
    (kind === "impl" ? blocks : out).push({
      name: d.name,
      kind: kind === "impl" ? SymbolKind.UNSPECIFIED : KIND[kind],
      path,
      language: spec.id,
      startLine: startRow + 1,
      endLine: endRow + 1,
      signature: signatureOf(d.node, range, source),
      container: d.container ?? parent?.name ?? "",
    });
  }
  const order = (a: CodeSymbolInfo, b: CodeSymbolInfo): number =>
    a.startLine - b.startLine || b.endLine - a.endLine || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return { symbols: out.sort(order), blocks: blocks.sort(order) };
}

/** The nearest ancestor declaration (the first def recorded for that node). */
function enclosingDef(node: Node, byId: Map<number, Def>): Def | undefined {
  for (let p = node.parent; p; p = p.parent) {
    const d = byId.get(p.id);
    if (d) return d;
  }
  return undefined;
}

function refineKind(d: Def, spec: LanguageSpec): KindName {
  const node = d.node;
  if (d.kind === "variable" && node.type === "variable_declarator") {
    const value = node.childForFieldName("value");
    if (value && FUNCTION_VALUES.has(value.type)) return "function";
    if (value && CLASS_VALUES.has(value.type)) return "class";
    return node.parent?.firstChild?.type === "const" ? "constant" : "variable";
  }
  if (d.kind === "variable" && spec.id === "python") return /^[A-Z][A-Z0-9_]*$/.test(d.name) ? "constant" : "variable";
  if (d.kind === "type" && node.type === "type_spec") {
    const t = node.childForFieldName("type")?.type;
    if (t === "struct_type") return "struct";
    if (t === "interface_type") return "interface";
  }
  return d.kind;
}

/** The node whose lines the symbol spans: the declaration plus its export/decorator/`type (...)` wrappers. */
function rangeNode(node: Node): Node {
  let n = node;
  const p = n.parent;
  if (p && n.type === "variable_declarator" && countNamed(p, "variable_declarator") === 1) n = p;
  else if (p && n.type === "assignment" && p.type === "expression_statement") n = p;
  else if (p && GO_SPECS.has(n.type) && p.type.endsWith("_declaration") && countNamed(p, n.type) === 1) n = p;
  while (n.parent && WRAPPERS.has(n.parent.type)) n = n.parent;
  return n;
}

function countNamed(node: Node, type: string): number {
  let count = 0;
  for (const child of node.namedChildren) if (child?.type === type) count++;
  return count;
}

const SKIP_IN_SIGNATURE = new Set(["decorator", "comment", "attribute_item", "line_comment", "block_comment"]);

/** The declaration's header: from its first keyword (decorators skipped) to the start of its body. */
function signatureOf(def: Node, range: Node, source: string): string {
  let start = range.startIndex;
  for (const child of range.children) {
    if (!child || SKIP_IN_SIGNATURE.has(child.type)) continue;
    start = child.startIndex;
    break;
  }
  const body = bodyOf(def);
  let end: number;
  if (body && body.startIndex > start) end = body.startIndex;
  else {
    const nl = source.indexOf("\n", start);
    end = Math.min(nl < 0 ? source.length : nl, range.endIndex);
  }
  let sig = source
    .slice(start, Math.min(end, start + SIGNATURE_MAX * 4))
    .replace(/\s+/g, " ")
    .replace(/\(\s+/g, "(")
    .replace(/\s+\)/g, ")")
    .trim()
    .replace(/\s*[{;]$/, "");
  if (sig.length > SIGNATURE_MAX) sig = `${sig.slice(0, SIGNATURE_MAX - 1)}…`;
  return sig;
}

function bodyOf(def: Node): Node | null {
  const body = def.childForFieldName("body");
  if (body) return body;
  const value = def.childForFieldName("value");
  if (value && (FUNCTION_VALUES.has(value.type) || CLASS_VALUES.has(value.type)))
    return value.childForFieldName("body");
  return null;
}

/** Strips the quotes of `declare module "x"` and surrounding whitespace. */
function cleanName(text: string): string {
  return text.trim().replace(/^(["'`])(.*)\1$/s, "$2");
}

/** `*Server` -> Server, `Pair[K, V]` -> Pair, `Circle<f64>` -> Circle, `&'a mut std::Vec<T>` -> Vec. */
function baseTypeName(text: string): string {
  const t = text
    .replace(/^[\s&*]+/, "")
    .replace(/^'\w+\s+/, "")
    .replace(/^(mut|dyn|const)\s+/, "")
    .split(/[<[(\s]/)[0];
  return (t ?? "").split("::").pop() ?? "";
}
