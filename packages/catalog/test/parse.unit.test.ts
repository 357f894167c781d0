import { describe, expect, it } from "vitest";
import { DEFAULT_POLICY_SPEC } from "@safedeploy/schema";
import {
  assembleCatalog,
  formatCatalogError,
  formatPath,
  parseCatalogText,
} from "@safedeploy/catalog";
import type { CatalogError, CatalogResult } from "@safedeploy/catalog";

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

const policy = (name: string, spec = "{}") => `apiVersion: safedeploy.dev/v1
kind: Policy
metadata: { name: ${name} }
spec: ${spec}
`;

const train = (name: string, ...services: string[]) => `apiVersion: safedeploy.dev/v1
kind: ReleaseTrain
metadata: { name: ${name} }
spec:
  steps:
${services.map((s) => `    - { service: ${s}, image: "${s}:1" }`).join("\n")}
`;

const docs = (...texts: string[]) => texts.join("---\n");

/** Assembles the given files (name → text) in the order given. */
const assemble = (files: Record<string, string>) =>
  assembleCatalog(Object.entries(files).map(([file, text]) => parseCatalogText(text, file)));

const where = (result: CatalogResult) =>
  result.ok ? [] : result.errors.map((e) => `${e.file}#${e.document} ${e.path}: ${e.message}`);

describe("parseCatalogText", () => {
  it("validates every document of a multi-document text", () => {
    const parsed = parseCatalogText(
      docs(service("a"), policy("default"), train("t", "a")),
      "f.yaml",
    );
    expect(parsed.errors).toEqual([]);
    expect(parsed.file).toBe("f.yaml");
    expect(parsed.documents.map((d) => [d.document.kind, d.source])).toEqual([
      ["Service", { file: "f.yaml", document: 0 }],
      ["Policy", { file: "f.yaml", document: 1 }],
      ["ReleaseTrain", { file: "f.yaml", document: 2 }],
    ]);
    expect(parsed.identities.map((i) => `${i.kind}/${i.name}`)).toEqual([
      "Service/a",
      "Policy/default",
      "ReleaseTrain/t",
    ]);
  });

  it("reports YAML syntax errors with line and column, and keeps checking other documents", () => {
    const text = docs(
      service("a"),
      "apiVersion: safedeploy.dev/v1\nkind: [Service\n",
      service("b!"),
    );
    const { errors, documents } = parseCatalogText(text, "bad.yaml");
    expect(documents.map((d) => d.source.document)).toEqual([0]);
    expect(errors[0]).toMatchObject({ file: "bad.yaml", document: 1, path: "" });
    expect(errors[0]?.message).toMatch(/^YAML syntax error at line 14, column \d+: /);
    expect(errors.at(-1)).toMatchObject({ document: 2, path: "metadata.name" });
  });

  it("reports a duplicate key in a mapping as a syntax error", () => {
    const { errors } = parseCatalogText(
      `${service("a")}  promotion: {}\n  promotion: {}\n`,
      "f.yaml",
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(
      /^YAML syntax error at line 12, column 3: Map keys must be unique/,
    );
  });

  it("refuses unknown kinds, non-mappings and wrong API versions; skips empty documents", () => {
    const text = `kind: Deployment\n---\n- a list\n---\n${service("x").replace("safedeploy.dev/v1", "safedeploy.dev/v0")}---\n# only a comment\n`;
    const { errors, documents } = parseCatalogText(text, "f.yaml");
    expect(documents).toEqual([]);
    expect(errors.map((e) => [e.document, e.path, e.message])).toEqual([
      [0, "kind", "kind must be Service, Policy, ReleaseTrain, FreezeWindow or Notifier"],
      [1, "", "must be a mapping with apiVersion, kind, metadata and spec"],
      [2, "apiVersion", "must be safedeploy.dev/v1"],
    ]);
    expect(parseCatalogText("", "empty.yaml")).toEqual({
      file: "empty.yaml",
      documents: [],
      errors: [],
      identities: [],
    });
  });

  it("names missing required fields as required and misspelt fields as unknown", () => {
    expect(
      parseCatalogText(
        "apiVersion: safedeploy.dev/v1\nkind: Service\nmetadata: { name: a, ownr: b }\n",
        "f.yaml",
      ).errors,
    ).toEqual([
      { file: "f.yaml", document: 0, path: "metadata.owner", message: "is required" },
      { file: "f.yaml", document: 0, path: "metadata.ownr", message: "unknown field" },
      { file: "f.yaml", document: 0, path: "spec", message: "is required" },
    ]);
  });

  it("reports every error of a document with its full field path", () => {
    const text = service(
      "a",
      "  deployment: { strategy: canary, canary: { steps: [50, 10], bakeTime: 1 } }\n",
    )
      .replace("objective: 99.9", "objective: 100")
      .replace("[{{.window}}]))\n", "[5m]))\n");
    expect(parseCatalogText(text, "f.yaml").errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      "spec.slos[0].objective: must be less than 100",
      "spec.slos[0].sli.errorQuery: must contain {{.window}} where the window goes, e.g. rate(x[{{.window}}])",
      "spec.deployment.canary.steps: weights must strictly increase",
      "spec.deployment.canary.bakeTime: Invalid input: expected string, received number",
    ]);
  });

  it("refuses an alias bomb instead of expanding it", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      ...Array.from({ length: 8 }, (_, i) => {
        const prev = i === 0 ? "a" : `l${i - 1}`;
        return `l${i}: &l${i} [${Array(10).fill(`*${prev}`).join(", ")}]`;
      }),
    ].join("\n");
    const { errors } = parseCatalogText(bomb, "bomb.yaml");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ document: 0, path: "" });
    expect(errors[0]?.message).toMatch(/^YAML error: .*alias/i);
  });
});

describe("assembleCatalog", () => {
  it("resolves every service's policy over the Policy named default", () => {
    const result = assemble({
      "a.yaml": docs(
        policy("default", "{ noData: allow }"),
        policy("strict", "{ approvals: { required: 3 } }"),
        service("a", "  policy: { approvals: { required: 2 } }\n"),
        service("b"),
      ),
    });
    if (!result.ok) throw new Error(where(result).join("\n"));
    const { catalog } = result;
    expect(catalog.defaultPolicy).toEqual({ ...DEFAULT_POLICY_SPEC, noData: "allow" });
    expect(catalog.policies.map((p) => p.metadata.name)).toEqual(["default", "strict"]);
    expect(catalog.services.map((s) => [s.name, s.owner, s.source.document])).toEqual([
      ["a", "team", 2],
      ["b", "team", 3],
    ]);
    expect(catalog.services[0]?.policy).toEqual({
      ...DEFAULT_POLICY_SPEC,
      noData: "allow",
      approvals: { required: 2 },
    });
    expect(catalog.services[1]?.policy).toBe(catalog.defaultPolicy);
  });

  it("uses the built-in defaults when no Policy is named default", () => {
    const result = assemble({ "a.yaml": docs(service("a"), policy("other", "{ noData: allow }")) });
    if (!result.ok) throw new Error(where(result).join("\n"));
    expect(result.catalog.defaultPolicy).toBe(DEFAULT_POLICY_SPEC);
    expect(result.catalog.services[0]?.policy).toBe(DEFAULT_POLICY_SPEC);
    expect(result.catalog.trains).toEqual([]);
  });

  it("refuses a second document of the same kind and name, naming both places", () => {
    const result = assemble({
      "a.yaml": docs(service("a"), policy("a")),
      "b.yaml": docs(train("a", "a"), service("a")),
    });
    expect(where(result)).toEqual([
      'b.yaml#1 metadata.name: duplicate Service "a" (first defined in a.yaml#0)',
    ]);
  });

  it("counts an invalid document's name for duplicates and known services", () => {
    const invalid = service("a").replace("owner: team", "owner: ''");
    const result = assemble({ "a.yaml": docs(invalid, service("a"), train("t", "a", "ghost")) });
    expect(where(result)).toEqual([
      "a.yaml#0 metadata.owner: is required",
      'a.yaml#1 metadata.name: duplicate Service "a" (first defined in a.yaml#0)',
      'a.yaml#2 spec.steps[1].service: unknown service "ghost"',
    ]);
  });

  it("orders errors by file (in the order given) and document, whatever found them", () => {
    const result = assemble({
      "z.yaml": docs(train("t", "ghost"), service("a")),
      "a.yaml": docs(service("a"), "kind: Nope\n"),
    });
    expect(where(result)).toEqual([
      'z.yaml#0 spec.steps[0].service: unknown service "ghost"',
      'a.yaml#0 metadata.name: duplicate Service "a" (first defined in z.yaml#1)',
      "a.yaml#1 kind: kind must be Service, Policy, ReleaseTrain, FreezeWindow or Notifier",
    ]);
  });
});

describe("formatting", () => {
  it("formats field paths with dots and indexes", () => {
    expect(formatPath(["spec", "slos", 0, "sli", "errorQuery"])).toBe(
      "spec.slos[0].sli.errorQuery",
    );
    expect(formatPath([0, "a", 1, 2])).toBe("[0].a[1][2]");
    expect(formatPath([])).toBe("");
  });

  it("formats an error as file#document: path: message", () => {
    const error: CatalogError = {
      file: "catalog/shop.yaml",
      document: 1,
      path: "spec.slos[0].objective",
      message: "must be less than 100",
    };
    expect(formatCatalogError(error)).toBe(
      "catalog/shop.yaml#1: spec.slos[0].objective: must be less than 100",
    );
    expect(formatCatalogError({ ...error, path: "" })).toBe(
      "catalog/shop.yaml#1: must be less than 100",
    );
  });
});
