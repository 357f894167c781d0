import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "@safedeploy/catalog";
import type { CatalogResult } from "@safedeploy/catalog";

const fixtures = new URL("../../../test/fixtures/catalog/", import.meta.url).pathname;

const service = (name: string) => `apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: ${name}, owner: team }
spec:
  slos:
    - name: availability
      objective: 99.9
      sli:
        errorQuery: sum(rate(e[{{.window}}]))
        totalQuery: sum(rate(t[{{.window}}]))
`;

/** A fresh directory holding the given files (relative path → text). */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "sd-catalog-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const servicesOf = (result: CatalogResult) =>
  result.ok ? result.catalog.services.map((s) => s.name) : result.errors;

describe("loadCatalog on the fixtures", () => {
  it("loads the valid catalog: several documents per file, nested directories, .yml", async () => {
    const result = await loadCatalog(join(fixtures, "valid"));
    if (!result.ok) throw new Error(JSON.stringify(result.errors, null, 2));
    const { catalog } = result;
    expect(
      catalog.services.map((s) => [s.name, relative(fixtures, s.source.file), s.source.document]),
    ).toEqual([
      ["cart", "valid/services/cart.yml", 0],
      ["checkout", "valid/services/shop.yaml", 0],
      ["search", "valid/services/shop.yaml", 1],
    ]);
    expect(catalog.policies.map((p) => p.metadata.name)).toEqual(["default"]);
    expect(catalog.trains.map((t) => t.metadata.name)).toEqual(["train-42"]);
    expect(catalog.trains[0]?.spec.steps.map((s) => s.service)).toEqual(["checkout", "cart"]);
    expect(catalog.defaultPolicy.burnRates).toHaveLength(3);

    const byName = new Map(catalog.services.map((s) => [s.name, s]));
    const search = byName.get("search")!;
    expect(search.owner).toBe("team-discovery");
    expect(search.policy.requireCanary).toBe(false); // the service's own override
    expect(search.policy.approvals.required).toBe(2);
    expect(search.policy.freezeOnExhaustion).toBe("24h"); // from the default Policy
    const checkout = byName.get("checkout")!;
    expect(checkout.policy).toBe(catalog.defaultPolicy);
    expect(checkout.spec.slos.map((s) => [s.name, s.window, s.minEvents])).toEqual([
      ["availability", "30d", 100],
      ["latency", "7d", 100],
    ]);
    expect(checkout.spec.rollback?.path).toBe("envs/prod/checkout");
  });

  it("reports exactly the five mistakes, each with its file, document and field path", async () => {
    const result = await loadCatalog(join(fixtures, "five-mistakes"));
    if (result.ok) throw new Error("five mistakes were accepted");
    expect(result.errors.map((e) => [relative(fixtures, e.file), e.document, e.path])).toEqual([
      ["five-mistakes/services.yaml", 0, "spec.slos[0].objective"],
      ["five-mistakes/services.yaml", 1, "metadata.owner"],
      ["five-mistakes/services.yaml", 2, "spec.deployment.canary.bakeTime"],
      ["five-mistakes/team-payments.yaml", 0, "metadata.name"],
      ["five-mistakes/team-payments.yaml", 1, "spec.maxPromotionBurnRat"],
    ]);
    expect(result.errors.map((e) => e.message)).toEqual([
      "must be less than 100",
      "is required",
      "must be a positive duration such as 30s, 5m, 1h or 30d",
      `duplicate Service "checkout" (first defined in ${join(fixtures, "five-mistakes/services.yaml")}#0)`,
      "unknown field",
    ]);
  });
});

describe("loadCatalog on files and directories", () => {
  it("reads a single file whatever its extension", async () => {
    const dir = tree({ "catalog.txt": service("a") });
    expect(servicesOf(await loadCatalog(join(dir, "catalog.txt")))).toEqual(["a"]);
  });

  it("recurses into directories in name order, skipping hidden entries and other files", async () => {
    const dir = tree({
      "b.yaml": service("b"),
      "a/z.yml": service("az"),
      "a/deeper/still/c.yaml": service("c"),
      "A.yaml": service("upper"),
      "notes.txt": "kind: nonsense",
      "README.md": "# not a catalog",
      ".hidden/broken.yaml": "broken: [",
      ".swap.yaml": "broken: [",
    });
    // Code-unit order, the same on every machine: "A" < "a" < "b"; a directory's files in place.
    expect(servicesOf(await loadCatalog(dir))).toEqual(["upper", "c", "az", "b"]);
  });

  it("follows symbolic links without looping", async () => {
    const dir = tree({ "real/a.yaml": service("a") });
    symlinkSync(join(dir, "real"), join(dir, "linked"));
    symlinkSync(dir, join(dir, "real", "loop"));
    symlinkSync(join(dir, "real", "a.yaml"), join(dir, "b.yaml"));
    symlinkSync(join(dir, "nowhere"), join(dir, "dangling.yaml"));
    symlinkSync(join(dir, "nowhere"), join(dir, "dangling.txt"));
    const result = await loadCatalog(dir);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(
      result.errors.map((e) => [relative(dir, e.file), e.document, e.path, e.message]),
    ).toEqual([
      ["dangling.yaml", 0, "", "no such file or directory"],
      [
        "linked/a.yaml",
        0,
        "metadata.name",
        `duplicate Service "a" (first defined in ${join(dir, "b.yaml")}#0)`,
      ],
    ]);
  });

  it("names files as the path was given, relative to cwd", async () => {
    const dir = tree({ "catalog/shop.yaml": `${service("a")}---\n${service("a")}` });
    const result = await loadCatalog("catalog", { cwd: dir });
    expect(result).toEqual({
      ok: false,
      errors: [
        {
          file: "catalog/shop.yaml",
          document: 1,
          path: "metadata.name",
          message: 'duplicate Service "a" (first defined in catalog/shop.yaml#0)',
        },
      ],
    });
  });

  it("reports a YAML syntax error in a file with its line", async () => {
    const dir = tree({ "a.yaml": `${service("a")}---\nkind: Service\nmetadata: { name: b\n` });
    const result = await loadCatalog(dir);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ file: join(dir, "a.yaml"), document: 1, path: "" });
    expect(result.errors[0]?.message).toMatch(/^YAML syntax error at line 1[34], column \d+/);
  });

  it("refuses a release train naming an unknown service", async () => {
    const dir = tree({
      "a.yaml": service("a"),
      "train.yaml": `apiVersion: safedeploy.dev/v1
kind: ReleaseTrain
metadata: { name: t }
spec:
  steps:
    - { service: a, image: "a:1" }
    - { service: ghost, image: "g:1" }
`,
    });
    expect(await loadCatalog(dir)).toMatchObject({
      ok: false,
      errors: [{ document: 0, path: "spec.steps[1].service", message: 'unknown service "ghost"' }],
    });
  });

  it("gives one clear error for a missing path or a directory without catalog files", async () => {
    const dir = tree({ "notes.txt": "" });
    expect(await loadCatalog(join(dir, "missing"))).toEqual({
      ok: false,
      errors: [
        {
          file: join(dir, "missing"),
          document: 0,
          path: "",
          message: "cannot read catalog: no such file or directory",
        },
      ],
    });
    expect(await loadCatalog(dir)).toEqual({
      ok: false,
      errors: [{ file: dir, document: 0, path: "", message: "no .yaml or .yml files found" }],
    });
  });
});
