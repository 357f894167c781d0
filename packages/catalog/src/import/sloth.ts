import type { Slo } from "@safedeploy/schema";
import {
  DEFAULT_IMPORT_WINDOW,
  IssueLog,
  checkSlo,
  isRecord,
  nameProblem,
  serviceDocument,
} from "./common.js";
import type { ImportOptions, ImportResult, ImportedService, SourceDocument } from "./common.js";

/** Whether a YAML value is a Sloth `prometheus/v1` spec. */
export const isSlothSpec = (value: Readonly<Record<string, unknown>>): boolean =>
  value.version === "prometheus/v1";

const ALERTING_NOTE =
  "Sloth's page and ticket alerts are not imported: SafeDeploy judges burn rates by the Policy's burnRates (default: the SRE Workbook table)";

/** One Sloth SLO as a SafeDeploy SLO, or undefined (with the reason logged). */
function sloOf(source: SourceDocument, raw: unknown, at: string, log: IssueLog): Slo | undefined {
  if (!isRecord(raw)) {
    log.unmapped(source, at, "must be a mapping");
    return undefined;
  }
  const problem = nameProblem(raw.name);
  if (problem !== undefined) {
    log.unmapped(source, `${at}.name`, `${problem}; SafeDeploy SLO names are [a-z0-9-]`);
    return undefined;
  }
  const sli = isRecord(raw.sli) ? raw.sli : {};
  if (sli.plugin !== undefined) {
    log.unmapped(
      source,
      `${at}.sli.plugin`,
      "SLI plugins run inside Sloth; write the plugin's queries as sli.events.error_query and total_query",
    );
    return undefined;
  }
  if (sli.raw !== undefined) {
    log.unmapped(
      source,
      `${at}.sli.raw`,
      "a raw error-ratio query has no event counts; SafeDeploy needs an error and a total query (sli.events)",
    );
    return undefined;
  }
  const events = isRecord(sli.events) ? sli.events : undefined;
  if (events === undefined) {
    log.unmapped(source, `${at}.sli`, "needs sli.events with error_query and total_query");
    return undefined;
  }
  const checked = checkSlo({
    name: raw.name,
    objective: raw.objective,
    window: DEFAULT_IMPORT_WINDOW,
    sli: { errorQuery: events.error_query, totalQuery: events.total_query },
  });
  if (checked.ok) {
    if (raw.slo_plugins !== undefined) {
      log.ignored(source, `${at}.slo_plugins`, "SLO plugins are Sloth rule-generation steps");
    }
    if (isRecord(raw.alerting) && Object.keys(raw.alerting).length > 0) {
      log.ignored(source, `${at}.alerting`, ALERTING_NOTE);
    }
    return checked.slo;
  }
  for (const text of checked.problems) {
    const spelled = text
      .replace(/^sli\.errorQuery/, "sli.events.error_query")
      .replace(/^sli\.totalQuery/, "sli.events.total_query");
    const [path, ...message] = spelled.split(": ");
    log.unmapped(source, `${at}.${path ?? ""}`, message.join(": "));
  }
  return undefined;
}

/**
 * Sloth `prometheus/v1` specs → Services: `service` is the name, `labels.owner` the owner (else
 * the option), each `sli.events` SLO an SLO over Sloth's default 30d window. SLI plugins and raw
 * ratio SLIs are reported, not guessed at. Pure.
 */
export function importSloth(
  sources: readonly SourceDocument[],
  options: ImportOptions,
): ImportResult {
  const log = new IssueLog();
  const services: ImportedService[] = [];
  for (const source of sources) {
    const { value } = source;
    const problem = nameProblem(value.service);
    if (problem !== undefined) {
      log.unmapped(source, "service", `${problem}; SafeDeploy service names are [a-z0-9-]`);
      continue;
    }
    if (value.slo_plugins !== undefined) {
      log.ignored(source, "slo_plugins", "SLO plugins are Sloth rule-generation steps");
    }
    const list = Array.isArray(value.slos) ? value.slos : [];
    if (list.length === 0) log.unmapped(source, "slos", "needs at least one SLO");
    const slos = list.flatMap((raw, i) => sloOf(source, raw, `slos[${i}]`, log) ?? []);
    if (slos.length === 0) continue;
    const labels = isRecord(value.labels) ? value.labels : {};
    const owner =
      typeof labels.owner === "string" && labels.owner.trim() !== "" ? labels.owner : options.owner;
    services.push({
      document: serviceDocument(value.service as string, owner, slos, options),
      source: { file: source.file, document: source.document },
      sloNames: slos.map((slo) => slo.name),
    });
  }
  return { services, issues: log.issues };
}
