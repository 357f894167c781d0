import { stringify } from "yaml";
import { IMPORT_DEFAULTS, isRecord, serviceYamlValue } from "./common.js";
import type { ImportIssue, ImportOptions, ImportResult, SourceDocument } from "./common.js";
import { importOpenSlo, isOpenSloDocument } from "./openslo.js";
import { importSloth, isSlothSpec } from "./sloth.js";

export { DEFAULT_IMPORT_WINDOW, IMPORT_DEFAULTS } from "./common.js";
export type {
  ImportIssue,
  ImportOptions,
  ImportResult,
  ImportedService,
  SourceDocument,
} from "./common.js";
export { importOpenSlo } from "./openslo.js";
export { importSloth } from "./sloth.js";

/** Which foreign SLO format a YAML value is in, if any. */
export function foreignFormat(value: unknown): "sloth" | "openslo" | undefined {
  if (!isRecord(value)) return undefined;
  if (isSlothSpec(value)) return "sloth";
  if (isOpenSloDocument(value)) return "openslo";
  return undefined;
}

/**
 * Converts Sloth and OpenSLO documents (mixed, from any files) into Services; a service named by
 * several sources gets all their SLOs. Pure.
 */
export function importDocuments(
  sources: readonly SourceDocument[],
  options: ImportOptions = IMPORT_DEFAULTS,
): ImportResult {
  const sloth = importSloth(
    sources.filter((s) => foreignFormat(s.value) === "sloth"),
    options,
  );
  const openslo = importOpenSlo(
    sources.filter((s) => foreignFormat(s.value) === "openslo"),
    options,
  );
  const issues: ImportIssue[] = [...sloth.issues, ...openslo.issues];
  const merged = new Map<string, ImportResult["services"][number]>();
  for (const service of [...sloth.services, ...openslo.services]) {
    const name = service.document.metadata.name;
    const seen = merged.get(name);
    if (seen === undefined) {
      merged.set(name, service);
      continue;
    }
    const names = new Set(seen.sloNames);
    const fresh = service.document.spec.slos.filter((slo) => {
      if (!names.has(slo.name)) return true;
      issues.push({
        ...service.source,
        path: "",
        level: "unmapped",
        message: `SLO ${slo.name} of ${name} is already defined in ${seen.source.file}#${seen.source.document}`,
      });
      return false;
    });
    const slos = [...seen.document.spec.slos, ...fresh];
    merged.set(name, {
      ...seen,
      document: { ...seen.document, spec: { ...seen.document.spec, slos } },
      sloNames: slos.map((slo) => slo.name),
    });
  }
  return { services: [...merged.values()], issues };
}

/** The imported services as catalog YAML: one document each, only what a person would write. */
export function importedYaml(result: ImportResult): string {
  return result.services
    .map((service) => stringify(serviceYamlValue(service.document), { lineWidth: 0 }))
    .join("---\n");
}

/** `file#document: path: unmapped|ignored: message`. */
export function formatImportIssue(issue: ImportIssue): string {
  const path = issue.path === "" ? "" : `${issue.path}: `;
  const level = issue.level === "unmapped" ? "not imported" : "ignored";
  return `${issue.file}#${issue.document}: ${path}${level}: ${issue.message}`;
}
