import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  formatCatalogError,
  formatImportIssue,
  importDocuments,
  parseCatalogText,
} from "../src/index.js";

/**
 * The ```yaml blocks of docs/import.md and docs/freeze-windows.md (the README's Import and
 * Freeze windows sections repeat them): each must be valid catalog documents, or Sloth/OpenSLO
 * documents that import with nothing left out.
 */
const docs = ["docs/import.md", "docs/freeze-windows.md"].flatMap((file) => {
  const text = readFileSync(new URL(`../../../${file}`, import.meta.url), "utf8");
  return [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map(
    (match, index) => [`${file} block ${index + 1}`, match[1] ?? ""] as const,
  );
});

describe("docs examples", () => {
  it("has examples in both documents", () => {
    expect(docs.filter(([name]) => name.startsWith("docs/import.md")).length).toBeGreaterThan(1);
    expect(docs.filter(([name]) => name.startsWith("docs/freeze-windows.md")).length).toBe(1);
  });

  it.each(docs)("%s is valid", (name, text) => {
    const parsed = parseCatalogText(text, name);
    expect(parsed.errors.map(formatCatalogError)).toEqual([]);
    const foreign = parsed.foreign ?? [];
    const imported = importDocuments(foreign);
    expect(imported.issues.filter((i) => i.level === "unmapped").map(formatImportIssue)).toEqual(
      [],
    );
    expect(parsed.documents.length + imported.services.length).toBeGreaterThan(0);
  });

  it("the freeze window example has a deny and an allow window", () => {
    const [, text] = docs.find(([name]) => name.startsWith("docs/freeze-windows.md")) ?? ["", ""];
    const kinds = parseCatalogText(text, "x").documents.map(({ document }) =>
      document.kind === "FreezeWindow" ? document.spec.effect : document.kind,
    );
    expect(kinds).toEqual(["deny", "allow"]);
  });
});
