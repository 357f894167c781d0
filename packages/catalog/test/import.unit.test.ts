import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import {
  IMPORT_DEFAULTS,
  assembleCatalog,
  formatImportIssue,
  importDocuments,
  importedYaml,
  parseCatalogText,
} from "@safedeploy/catalog";
import type { ImportResult, SourceDocument } from "@safedeploy/catalog";

const FIXTURES = new URL("../../../test/fixtures/import", import.meta.url).pathname;

function sourcesOf(...files: string[]): SourceDocument[] {
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(join(FIXTURES, file), "utf8")).flatMap((doc, document) => {
      const value: unknown = doc.toJS();
      return value === null ? [] : [{ file, document, value: value as Record<string, unknown> }];
    }),
  );
}

const lines = (result: ImportResult) => result.issues.map(formatImportIssue);

/** The emitted YAML, read back as a catalog: it must validate as it stands. */
function reparsed(result: ImportResult) {
  const catalog = assembleCatalog([parseCatalogText(importedYaml(result), "out.yaml")]);
  if (!catalog.ok) throw new Error(JSON.stringify(catalog.errors));
  return catalog.catalog;
}

describe("importing Sloth prometheus/v1 (slok/sloth examples)", () => {
  it("getting-started: the service, its owner label and its event SLO, with the defaults", () => {
    const result = importDocuments(sourcesOf("sloth-getting-started.yml"));
    const [service] = reparsed(result).services;
    expect(service?.name).toBe("myservice");
    expect(service?.owner).toBe("myteam");
    expect(service?.spec.slos).toEqual([
      expect.objectContaining({
        name: "requests-availability",
        objective: 99.9,
        window: "30d",
        sli: {
          errorQuery:
            'sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))',
          totalQuery:
            'sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))',
        },
      }),
    ]);
    expect(service?.spec.rollback?.path).toBe("envs/prod/myservice");
    expect(service?.spec.deployment?.strategy).toBe("canary");
    // Nothing silently dropped: the SLO plugin chain and the alerts are named.
    expect(lines(result)).toEqual([
      "sloth-getting-started.yml#0: slo_plugins: ignored: SLO plugins are Sloth rule-generation steps",
      expect.stringMatching(/^sloth-getting-started\.yml#0: slos\[0\]\.alerting: ignored: /),
    ]);
  });

  it("kubernetes-apiserver: two SLOs, and the --owner default when the spec names none", () => {
    const options = { ...IMPORT_DEFAULTS, owner: "team-k8s", strategy: "rolling" as const };
    const result = importDocuments(sourcesOf("sloth-kubernetes-apiserver.yml"), options);
    const [service] = reparsed(result).services;
    expect(service?.owner).toBe("team-k8s");
    expect(service?.spec.slos.map((s) => [s.name, s.objective])).toEqual([
      ["requests-availability", 99.9],
      ["requests-latency", 99],
    ]);
    expect(service?.spec.deployment?.strategy).toBe("rolling");
  });

  it("raw and plugin SLIs are reported with file and path, not guessed", () => {
    const result = importDocuments(
      sourcesOf("sloth-raw-home-wifi.yml", "sloth-plugin-getting-started.yml"),
    );
    expect(result.services).toEqual([]);
    expect(result.issues.filter((i) => i.level === "unmapped").map(formatImportIssue)).toEqual([
      expect.stringMatching(/^sloth-raw-home-wifi\.yml#0: slos\[0\]\.sli\.raw: not imported: /),
      expect.stringMatching(
        /^sloth-plugin-getting-started\.yml#0: slos\[0\]\.sli\.plugin: not imported: /,
      ),
    ]);
  });

  it("a query without {{.window}} is reported at its Sloth path", () => {
    const result = importDocuments([
      {
        file: "x.yml",
        document: 0,
        value: {
          version: "prometheus/v1",
          service: "svc",
          slos: [
            {
              name: "a",
              objective: 99,
              sli: {
                events: { error_query: "sum(errors)", total_query: "sum(rate(t[{{.window}}]))" },
              },
            },
          ],
        },
      },
    ]);
    expect(lines(result)).toEqual([
      expect.stringMatching(
        /^x\.yml#0: slos\[0\]\.sli\.events\.error_query: not imported: must contain/,
      ),
    ]);
  });
});

describe("importing OpenSLO v1", () => {
  it("an SLO by indicatorRef on a Prometheus DataSource, with burn-rate alert conditions", () => {
    const result = importDocuments(sourcesOf("openslo-v1-prometheus.yaml"));
    const [service] = reparsed(result).services;
    expect(service?.name).toBe("my-service");
    expect(service?.owner).toBe("myteam");
    const [slo] = service?.spec.slos ?? [];
    expect(slo?.objective).toBe(99.9);
    expect(slo?.window).toBe("30d");
    expect(slo?.sli.errorQuery).toBe(
      '(sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))) - (sum(rate(http_request_duration_seconds_count{job="myservice",code!~"(5..|429)"}[{{.window}}])))',
    );
    expect(service?.spec.policy?.burnRates).toEqual([
      { severity: "fast-burn", factor: 14.4, long: "1h", short: "5m" },
      { severity: "slow-burn", factor: 1, long: "3d", short: "6h" },
    ]);
    // alertAfter has no counterpart: reported where it is written (the inline and the referenced condition).
    expect(lines(result)).toEqual([
      expect.stringMatching(
        /^openslo-v1-prometheus\.yaml#4: spec\.conditions\[0\]\.spec\.condition\.alertAfter: ignored/,
      ),
      expect.stringMatching(/^openslo-v1-prometheus\.yaml#3: spec\.condition\.alertAfter: ignored/),
    ]);
  });

  it("the OpenSLO repository's examples that do not map say why, with file and path", () => {
    const result = importDocuments(
      sourcesOf(
        "openslo-ratio-timeslices.yaml",
        "openslo-occurrences-threshold.yaml",
        "openslo-readme-datadog.yaml",
        "openslo-sloth-getting-started.yml",
      ),
    );
    expect(result.services).toEqual([]);
    expect(lines(result)).toEqual([
      "openslo-sloth-getting-started.yml#0: apiVersion: not imported: openslo/v1alpha: only openslo/v1 is imported",
      "openslo-ratio-timeslices.yaml#0: spec.budgetingMethod: not imported: RatioTimeslices: SafeDeploy budgets count events (Occurrences)",
      expect.stringMatching(
        /^openslo-occurrences-threshold\.yaml#0: spec\.indicator\.spec\.thresholdMetric: not imported: /,
      ),
      expect.stringMatching(
        /^openslo-readme-datadog\.yaml#0: spec\.indicator\.spec\.ratioMetric\.total\.metricSource\.type: not imported: data source type Datadog is not Prometheus/,
      ),
      expect.stringMatching(
        /^openslo-readme-datadog\.yaml#0: spec\.indicator\.spec\.ratioMetric\.good\.metricSource\.type: not imported: /,
      ),
    ]);
  });

  it("a calendar-aligned window is reported", () => {
    const [slo] = sourcesOf("openslo-v1-prometheus.yaml").filter((s) => s.value.kind === "SLO");
    const calendar = {
      ...slo!,
      value: {
        ...slo!.value,
        spec: {
          ...(slo!.value.spec as object),
          timeWindow: [
            { duration: "1M", calendar: { startTime: "2020-01-21 12:30:00", timeZone: "UTC" } },
          ],
        },
      },
    };
    const others = sourcesOf("openslo-v1-prometheus.yaml").filter((s) => s.value.kind !== "SLO");
    const result = importDocuments([...others, calendar]);
    expect(result.services).toEqual([]);
    expect(lines(result)).toContainEqual(
      expect.stringMatching(/spec\.timeWindow\[0\]: not imported: calendar-aligned windows/),
    );
  });
});

describe("a catalog directory holding Sloth and OpenSLO files", () => {
  const text = (file: string) => readFileSync(join(FIXTURES, file), "utf8");

  it("validates them with the import defaults", () => {
    const result = assembleCatalog([
      parseCatalogText(text("sloth-getting-started.yml"), "sloth.yml"),
      parseCatalogText(text("openslo-v1-prometheus.yaml"), "openslo.yaml"),
    ]);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.catalog.services.map((s) => [s.name, s.owner, s.spec.rollback?.path])).toEqual([
      ["myservice", "myteam", "envs/prod/myservice"],
      ["my-service", "myteam", "envs/prod/my-service"],
    ]);
    expect(result.catalog.services[0]?.source).toEqual({ file: "sloth.yml", document: 0 });
  });

  it("reports what cannot be imported as errors naming file and path", () => {
    const result = assembleCatalog([parseCatalogText(text("sloth-raw-home-wifi.yml"), "wifi.yml")]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      expect.objectContaining({ file: "wifi.yml", document: 0, path: "slos[0].sli.raw" }),
    ]);
    expect(result.errors[0]?.message).toMatch(/^cannot import: /);
  });

  it("a Sloth service and a Service document of the same name are duplicates", () => {
    const native = `apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: myservice, owner: me }
spec: { slos: [] }
`;
    const result = assembleCatalog([
      parseCatalogText(native, "native.yaml"),
      parseCatalogText(text("sloth-getting-started.yml"), "sloth.yml"),
    ]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors[0]?.message).toMatch(/duplicate Service "myservice"/);
  });
});
