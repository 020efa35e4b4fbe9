export type { CodeSymbolInfo } from "./types.js";
export { extractSymbols, parseSymbols, DEFAULT_MAX_SOURCE_CHARS, DEFAULT_PARSE_TIMEOUT_MS } from "./extract.js";
export type { ExtractOptions, ExtractStatus, SymbolExtraction } from "./extract.js";
export { languageForPath, LANGUAGES, LANGUAGE_IDS } from "./languages.js";
export type { LanguageSpec } from "./languages.js";
export { initTreeSitter, loadGrammar, grammarWasmPath } from "./runtime.js";
export { matchSymbols, scoreName, DEFAULT_SYMBOL_LIMIT, MAX_SYMBOL_LIMIT } from "./match.js";
export type { SymbolQuery, ScoredSymbol, SymbolMatches } from "./match.js";
