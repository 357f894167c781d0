/**
 * @packageDocumentation
 * Loads catalog YAML (files or directories, several documents per file), validates every
 * document, and reports every error with its file, document index and field path, all at once.
 */
export {
  assembleCatalog,
  formatCatalogError,
  formatPath,
  loadCatalog,
  parseCatalogText,
} from "./load.js";
export type {
  Catalog,
  CatalogError,
  CatalogResult,
  CatalogService,
  ParsedText,
  Source,
} from "./load.js";
