import { API_VERSION, ResourceName, ServiceDocument, Slo, parseDuration } from "@safedeploy/schema";
import type { BurnRateRule } from "@safedeploy/schema";

/** One YAML document of a foreign format, and where it came from. */
export interface SourceDocument {
  readonly file: string;
  /** 0-based index of the YAML document in its file. */
  readonly document: number;
  readonly value: Readonly<Record<string, unknown>>;
}

/**
 * Something of the source that was not carried over: `unmapped` changes what is measured (the SLO
 * or service it belongs to is left out); `ignored` has no SafeDeploy counterpart and does not
 * change what is measured (labels of generated alerts, say).
 */
export interface ImportIssue {
  readonly file: string;
  readonly document: number;
  readonly path: string;
  readonly message: string;
  readonly level: "unmapped" | "ignored";
}

/** What the source formats lack, filled in for every imported service. */
export interface ImportOptions {
  /** Owner when the source names none (Sloth `labels.owner`, OpenSLO `metadata.labels.owner`). */
  readonly owner: string;
  /** The environment-repo directory; `{service}` is replaced by the service name. */
  readonly rollbackPath: string;
  readonly strategy: "canary" | "blue_green" | "rolling";
}

/** The documented defaults of `safedeploy import` and of Sloth/OpenSLO files in a catalog. */
export const IMPORT_DEFAULTS: ImportOptions = {
  owner: "unowned",
  rollbackPath: "envs/prod/{service}",
  strategy: "canary",
};

/** A Sloth SLO has no window of its own: Sloth's default SLO period. */
export const DEFAULT_IMPORT_WINDOW = "30d";

/** A Service document made from a source, valid as the catalog schema has it. */
export interface ImportedService {
  readonly document: ServiceDocument;
  /** The source document it was made from (the first, when several SLOs were merged). */
  readonly source: { readonly file: string; readonly document: number };
  readonly sloNames: readonly string[];
}

/** The services imported and everything not carried over. */
export interface ImportResult {
  readonly services: readonly ImportedService[];
  readonly issues: readonly ImportIssue[];
}

/** Collects issues against one source document. */
export class IssueLog {
  readonly issues: ImportIssue[] = [];
  unmapped(source: SourceDocument, path: string, message: string): void {
    this.issues.push({
      file: source.file,
      document: source.document,
      path,
      message,
      level: "unmapped",
    });
  }
  ignored(source: SourceDocument, path: string, message: string): void {
    this.issues.push({
      file: source.file,
      document: source.document,
      path,
      message,
      level: "ignored",
    });
  }
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** A name usable as a SafeDeploy service or SLO name, else why not. */
export function nameProblem(name: unknown): string | undefined {
  if (typeof name !== "string") return "is required";
  const parsed = ResourceName.safeParse(name);
  return parsed.success
    ? undefined
    : `"${name}" ${parsed.error.issues[0]?.message ?? "is not a valid name"}`;
}

/** `["sli", "errorQuery"]` → `sli.errorQuery` (as parse.ts spells paths; kept here to avoid a cycle). */
function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) =>
      typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`,
    )
    .join("");
}

/** The SLO if the catalog schema accepts it, else the schema's complaints (path: message). */
export function checkSlo(
  slo: Record<string, unknown>,
): { ok: true; slo: Slo } | { ok: false; problems: string[] } {
  const parsed = Slo.safeParse(slo);
  if (parsed.success) return { ok: true, slo: parsed.data };
  return {
    ok: false,
    problems: parsed.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`),
  };
}

/** Percent objective from a fraction, without float noise (0.999 → 99.9). */
export const percentOf = (fraction: number): number => Math.round(fraction * 1e8) / 1e6;

/** A Prometheus duration from an OpenSLO duration shorthand, if it has one (no M, Q or Y). */
export function promDuration(text: unknown): string | undefined {
  if (typeof text !== "string" || !/^\d+[smhdw]$/.test(text)) return undefined;
  return (parseDuration(text) ?? 0) > 0 ? text : undefined;
}

function deploymentFor(strategy: ImportOptions["strategy"]): ServiceDocument["spec"]["deployment"] {
  if (strategy === "canary") return { strategy, canary: { steps: [10, 50, 100], bakeTime: "10m" } };
  if (strategy === "blue_green") return { strategy, blueGreen: {} };
  return { strategy, rolling: { maxUnavailable: "25%" } };
}

/** The Service document for imported SLOs, with the options filling what the source lacks. */
export function serviceDocument(
  name: string,
  owner: string,
  slos: readonly Slo[],
  options: ImportOptions,
  burnRates?: readonly BurnRateRule[],
): ServiceDocument {
  return ServiceDocument.parse({
    apiVersion: API_VERSION,
    kind: "Service",
    metadata: { name, owner },
    spec: {
      slos,
      deployment: deploymentFor(options.strategy),
      rollback: {
        strategy: "git-revert",
        path: options.rollbackPath.replaceAll("{service}", name),
      },
      ...(burnRates === undefined ? {} : { policy: { burnRates } }),
    },
  });
}

/** Only what a person would write: defaults the schema filled in are left out. */
export function serviceYamlValue(service: ServiceDocument): Record<string, unknown> {
  const { slos, deployment, rollback, policy } = service.spec;
  return {
    apiVersion: service.apiVersion,
    kind: service.kind,
    metadata: service.metadata,
    spec: {
      slos: slos.map((slo) => ({
        name: slo.name,
        objective: slo.objective,
        window: slo.window,
        sli: slo.sli,
      })),
      deployment,
      rollback,
      ...(policy === undefined ? {} : { policy }),
    },
  };
}
