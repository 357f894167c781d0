import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { formatCatalogError, importDocuments, parseCatalogText } from "../src/index.js";

/** The README's ```yaml blocks: what users copy, so each must be a valid catalog document. */
const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");

describe("README examples", () => {
  it("has catalog examples", () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  it.each(blocks.map((text, index) => [index + 1, text] as const))(
    "yaml block %i parses as valid catalog documents",
    (_index, text) => {
      const parsed = parseCatalogText(text, "README.md");
      expect(parsed.errors.map(formatCatalogError)).toEqual([]);
      // A Sloth or OpenSLO example (the Import section) must import with nothing left out.
      const imported = importDocuments(parsed.foreign ?? []);
      expect(imported.issues.filter((i) => i.level === "unmapped")).toEqual([]);
      expect(parsed.documents.length + imported.services.length).toBeGreaterThan(0);
    },
  );
});
