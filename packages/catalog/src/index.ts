/**
 * @packageDocumentation
 * Loads catalog YAML (files or directories, several documents per file), validates every
 * document, and reports every error with its file, document index and field path, all at once.
 */
export { loadCatalog } from "./load.js";
export type { LoadCatalogOptions } from "./load.js";
export { assembleCatalog, formatCatalogError, formatPath, parseCatalogText } from "./parse.js";
export type {
  Catalog,
  CatalogError,
  CatalogResult,
  CatalogService,
  DocumentIdentity,
  ParsedDocument,
  ParsedText,
  Source,
} from "./parse.js";
export {
  DEFAULT_IMPORT_WINDOW,
  IMPORT_DEFAULTS,
  foreignFormat,
  formatImportIssue,
  importDocuments,
  importOpenSlo,
  importSloth,
  importedYaml,
} from "./import/index.js";
export type {
  ImportIssue,
  ImportOptions,
  ImportResult,
  ImportedService,
  SourceDocument,
} from "./import/index.js";
