import { readFile, readdir, realpath, stat } from "node:fs/promises";
import { extname, join, resolve } from "node:path";
import { assembleCatalog, parseCatalogText } from "./parse.js";
import type { CatalogError, CatalogResult, ParsedText } from "./parse.js";

/** How {@link loadCatalog} reads. */
export interface LoadCatalogOptions {
  /** Directory a relative `path` is read from; errors still name files as `path` spells them. */
  readonly cwd?: string | undefined;
}

const CATALOG_EXTENSIONS = [".yaml", ".yml"];

/** Code-unit order: the same on every machine, whatever its locale. */
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file or directory";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  return error instanceof Error ? error.message : String(error);
}

/**
 * The catalog files under `shown` (as the user spelt it; read at `real`), depth first in name
 * order. Hidden entries are skipped; symbolic links are followed once.
 */
async function catalogFiles(
  shown: string,
  real: string,
  visited: Set<string>,
  errors: CatalogError[],
): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(real, { withFileTypes: true });
  } catch (error) {
    errors.push({ file: shown, document: 0, path: "", message: `cannot read: ${describe(error)}` });
    return [];
  }
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => byName(a.name, b.name))) {
    if (entry.name.startsWith(".")) continue;
    const childShown = join(shown, entry.name);
    const childReal = join(real, entry.name);
    let isDirectory = entry.isDirectory();
    if (entry.isSymbolicLink()) {
      try {
        isDirectory = (await stat(childReal)).isDirectory();
      } catch (error) {
        // A dangling link matters only where a catalog file was meant to be.
        if (CATALOG_EXTENSIONS.includes(extname(entry.name))) {
          errors.push({ file: childShown, document: 0, path: "", message: describe(error) });
        }
        continue;
      }
    }
    if (isDirectory) {
      const target = await realpath(childReal);
      if (visited.has(target)) continue; // a link back up the tree
      visited.add(target);
      files.push(...(await catalogFiles(childShown, childReal, visited, errors)));
    } else if (CATALOG_EXTENSIONS.includes(extname(entry.name))) {
      files.push(childShown);
    }
  }
  return files;
}

/**
 * Loads a catalog from a YAML file or a directory (recursively: `.yaml` and `.yml` files, in
 * name order, hidden entries skipped). Never throws for bad input: a missing path, unreadable
 * files, YAML syntax and schema errors all come back as errors, every one at once.
 */
export async function loadCatalog(
  path: string,
  options: LoadCatalogOptions = {},
): Promise<CatalogResult> {
  const at = (file: string) => resolve(options.cwd ?? ".", file);
  const problem = (message: string): CatalogResult => ({
    ok: false,
    errors: [{ file: path, document: 0, path: "", message }],
  });
  let isFile: boolean;
  try {
    isFile = (await stat(at(path))).isFile();
  } catch (error) {
    return problem(`cannot read catalog: ${describe(error)}`);
  }
  const errors: CatalogError[] = [];
  const files = isFile
    ? [path]
    : await catalogFiles(path, at(path), new Set([await realpath(at(path))]), errors);
  if (files.length === 0 && errors.length === 0) return problem("no .yaml or .yml files found");
  const parsed: ParsedText[] = [];
  for (const file of files) {
    try {
      parsed.push(parseCatalogText(await readFile(at(file), "utf8"), file));
    } catch (error) {
      errors.push({ file, document: 0, path: "", message: `cannot read: ${describe(error)}` });
    }
  }
  const result = assembleCatalog(parsed);
  if (errors.length === 0) return result;
  return { ok: false, errors: [...errors, ...(result.ok ? [] : result.errors)] };
}
