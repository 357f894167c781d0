import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatPath, loadCatalog, parseCatalogText } from "@safedeploy/catalog";

const fixtures = new URL("../../../test/fixtures/catalog/", import.meta.url).pathname;

const service = (name: string, extra = "") => `apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: ${name}, owner: team }
spec:
  slos:
    - name: availability
      objective: 99.9
      sli:
        errorQuery: sum(rate(e[{{.window}}]))
        totalQuery: sum(rate(t[{{.window}}]))
${extra}`;

describe("loadCatalog", () => {
  it("loads a directory recursively with several documents per file and resolves policies", async () => {
    const result = await loadCatalog(join(fixtures, "valid"));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const { catalog } = result;
    expect(catalog.services.map((s) => s.name).sort()).toEqual(["cart", "checkout", "search"]);
    expect(catalog.trains.map((t) => t.metadata.name)).toEqual(["train-42"]);
    const search = catalog.services.find((s) => s.name === "search")!;
    expect(search.policy.requireCanary).toBe(false); // the service's own override
    expect(search.policy.approvals.required).toBe(2);
    expect(search.policy.freezeOnExhaustion).toBe("24h"); // inherited from the default Policy
    expect(search.source.file).toMatch(/services\/shop\.yaml$/);
    expect(search.source.document).toBe(1);
    const checkout = catalog.services.find((s) => s.name === "checkout")!;
    expect(checkout.spec.slos[0]).toMatchObject({ window: "30d", minEvents: 100 });
    expect(catalog.defaultPolicy.burnRates).toHaveLength(3);
  });

  it("reports every mistake with file, document and field path", async () => {
    const result = await loadCatalog(join(fixtures, "five-mistakes"));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => [e.file.split("/").pop(), e.document, e.path])).toEqual([
      ["more.yaml", 1, "spec.maxPromotionBurnRat"],
      ["services.yaml", 0, "spec.slos[0].objective"],
      ["services.yaml", 0, "metadata.name"],
      ["services.yaml", 1, "metadata.owner"],
      ["services.yaml", 2, "spec.deployment.canary.bakeTime"],
    ]);
  });

  it("reads a single file, ignores non-YAML files, and refuses an empty or missing path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sd-cat-"));
    writeFileSync(join(dir, "a.yaml"), service("a"));
    writeFileSync(join(dir, "notes.txt"), "kind: nonsense");
    mkdirSync(join(dir, ".hidden"));
    writeFileSync(join(dir, ".hidden", "b.yaml"), "broken: [");
    const single = await loadCatalog(join(dir, "a.yaml"));
    expect(single.ok && single.catalog.services.map((s) => s.name)).toEqual(["a"]);
    const whole = await loadCatalog(dir);
    expect(whole.ok).toBe(true);
    const empty = mkdtempSync(join(tmpdir(), "sd-cat-empty-"));
    expect(await loadCatalog(empty)).toMatchObject({
      ok: false,
      errors: [{ message: "no .yaml or .yml files found" }],
    });
    expect(await loadCatalog(join(dir, "missing"))).toMatchObject({
      ok: false,
      errors: [{ message: "cannot read catalog: no such file or directory" }],
    });
  });

  it("refuses a release train naming an unknown service", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sd-cat-"));
    writeFileSync(
      join(dir, "t.yaml"),
      `${service("a")}---
apiVersion: safedeploy.dev/v1
kind: ReleaseTrain
metadata: { name: t }
spec:
  steps:
    - { service: a, image: "x:1" }
    - { service: ghost, image: "y:1" }
`,
    );
    const result = await loadCatalog(dir);
    expect(result).toMatchObject({
      ok: false,
      errors: [{ document: 1, path: "spec.steps[1].service", message: 'unknown service "ghost"' }],
    });
  });
});

describe("parseCatalogText", () => {
  it("reports YAML syntax errors with line and column", () => {
    const { errors } = parseCatalogText(
      "apiVersion: safedeploy.dev/v1\nkind: [Service\n",
      "bad.yaml",
    );
    expect(errors[0]?.message).toMatch(/^YAML syntax error at line \d+, column \d+/);
  });

  it("refuses unknown kinds, non-mappings and wrong API versions; skips empty documents", () => {
    const text = `kind: Deployment\n---\n- a list\n---\n${service("x").replace("safedeploy.dev/v1", "safedeploy.dev/v0")}---\n`;
    const { errors, documents } = parseCatalogText(text, "f.yaml");
    expect(documents).toEqual([]);
    expect(errors.map((e) => [e.document, e.path, e.message])).toEqual([
      [0, "kind", "must be one of Service, Policy, ReleaseTrain"],
      [1, "", "must be a mapping with apiVersion, kind, metadata and spec"],
      [2, "apiVersion", "must be safedeploy.dev/v1"],
    ]);
  });

  it("names missing required fields as required", () => {
    const { errors } = parseCatalogText(
      "apiVersion: safedeploy.dev/v1\nkind: Service\nmetadata: { name: a, owner: b }\n",
      "f.yaml",
    );
    expect(errors).toEqual([{ file: "f.yaml", document: 0, path: "spec", message: "is required" }]);
  });
});

describe("formatPath", () => {
  it("formats nested fields and indexes", () => {
    expect(formatPath(["spec", "slos", 0, "sli", "errorQuery"])).toBe(
      "spec.slos[0].sli.errorQuery",
    );
    expect(formatPath([])).toBe("");
  });
});
