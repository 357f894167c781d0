import { formatDuration, parseDuration } from "@safedeploy/schema";
import type { BurnRateRule, Slo } from "@safedeploy/schema";
import {
  DEFAULT_IMPORT_WINDOW,
  IssueLog,
  checkSlo,
  isRecord,
  nameProblem,
  percentOf,
  promDuration,
  serviceDocument,
} from "./common.js";
import type { ImportOptions, ImportResult, ImportedService, SourceDocument } from "./common.js";

/** Whether a YAML value is an OpenSLO document (any version: only v1 is imported). */
export const isOpenSloDocument = (value: Readonly<Record<string, unknown>>): boolean =>
  typeof value.apiVersion === "string" && value.apiVersion.startsWith("openslo/");

type Rec = Record<string, unknown>;

/** A source value as a message shows it. */
const show = (value: unknown): string =>
  typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? String(value)
    : value === undefined
      ? "nothing"
      : JSON.stringify(value);

interface Named {
  readonly source: SourceDocument;
  readonly spec: Rec;
  readonly labels: Rec;
}

const specOf = (value: Rec): Rec => (isRecord(value.spec) ? value.spec : {});
const labelsOf = (value: Rec): Rec =>
  isRecord(value.metadata) && isRecord(value.metadata.labels) ? value.metadata.labels : {};
const nameOf = (value: Rec): unknown =>
  isRecord(value.metadata) ? value.metadata.name : undefined;

/** Every OpenSLO object by kind and name, so references resolve across files. */
class Registry {
  private readonly byKind = new Map<string, Map<string, Named>>();
  add(source: SourceDocument): void {
    const kind = String(source.value.kind);
    const name = nameOf(source.value);
    if (typeof name !== "string") return;
    const named = this.byKind.get(kind) ?? new Map<string, Named>();
    named.set(name, { source, spec: specOf(source.value), labels: labelsOf(source.value) });
    this.byKind.set(kind, named);
  }
  get(kind: string, name: unknown): Named | undefined {
    return typeof name === "string" ? this.byKind.get(kind)?.get(name) : undefined;
  }
}

interface Context {
  readonly source: SourceDocument;
  readonly registry: Registry;
  readonly log: IssueLog;
}

/** The PromQL of one `metricSource`, or undefined (reason logged) when it is not Prometheus. */
function promQuery(ctx: Context, metric: unknown, at: string): string | undefined {
  const source =
    isRecord(metric) && isRecord(metric.metricSource) ? metric.metricSource : undefined;
  if (source === undefined) {
    ctx.log.unmapped(ctx.source, `${at}.metricSource`, "is required");
    return undefined;
  }
  const ref = source.metricSourceRef;
  const dataSource = ctx.registry.get("DataSource", ref);
  if (ref !== undefined && dataSource === undefined && source.type === undefined) {
    ctx.log.unmapped(
      ctx.source,
      `${at}.metricSource.metricSourceRef`,
      `no DataSource named ${show(ref)}`,
    );
    return undefined;
  }
  const type = source.type ?? dataSource?.spec.type;
  if (typeof type !== "string" || type.toLowerCase() !== "prometheus") {
    ctx.log.unmapped(
      ctx.source,
      `${at}.metricSource.type`,
      `data source type ${String(type)} is not Prometheus; SafeDeploy reads PromQL only`,
    );
    return undefined;
  }
  const spec = isRecord(source.spec) ? source.spec : {};
  const query = spec.query ?? spec.promql;
  if (typeof query !== "string") {
    ctx.log.unmapped(ctx.source, `${at}.metricSource.spec.query`, "needs a PromQL query");
    return undefined;
  }
  return query.trim();
}

/** Error and total query of an SLI, from `ratioMetric` good/bad and total. */
function sliQueries(
  ctx: Context,
  sli: Rec,
  at: string,
): { errorQuery: string; totalQuery: string } | undefined {
  if (sli.thresholdMetric !== undefined) {
    ctx.log.unmapped(
      ctx.source,
      `${at}.thresholdMetric`,
      "threshold SLIs compare one value to a bound; SafeDeploy needs good or bad and total events (ratioMetric)",
    );
    return undefined;
  }
  const ratio = isRecord(sli.ratioMetric) ? sli.ratioMetric : undefined;
  if (ratio === undefined) {
    ctx.log.unmapped(ctx.source, at, "needs ratioMetric with good or bad, and total");
    return undefined;
  }
  if (ratio.raw !== undefined) {
    ctx.log.unmapped(
      ctx.source,
      `${at}.ratioMetric.raw`,
      "a precomputed ratio has no event counts; SafeDeploy needs good or bad, and total",
    );
    return undefined;
  }
  const total = promQuery(ctx, ratio.total, `${at}.ratioMetric.total`);
  if (ratio.bad !== undefined) {
    const bad = promQuery(ctx, ratio.bad, `${at}.ratioMetric.bad`);
    return bad === undefined || total === undefined
      ? undefined
      : { errorQuery: bad, totalQuery: total };
  }
  const good = promQuery(ctx, ratio.good, `${at}.ratioMetric.good`);
  if (good === undefined || total === undefined) return undefined;
  return { errorQuery: `(${total}) - (${good})`, totalQuery: total };
}

/** The one rolling time window, as a Prometheus duration. */
function windowOf(ctx: Context, spec: Rec): string | undefined {
  if (spec.timeWindow === undefined) return DEFAULT_IMPORT_WINDOW;
  const first: unknown = Array.isArray(spec.timeWindow) ? spec.timeWindow[0] : undefined;
  if (!isRecord(first)) {
    ctx.log.unmapped(ctx.source, "spec.timeWindow", "needs exactly one window");
    return undefined;
  }
  if (first.calendar !== undefined || first.isRolling === false) {
    ctx.log.unmapped(
      ctx.source,
      "spec.timeWindow[0]",
      "calendar-aligned windows are not supported; SafeDeploy budgets are rolling",
    );
    return undefined;
  }
  const window = promDuration(first.duration);
  if (window === undefined) {
    ctx.log.unmapped(
      ctx.source,
      "spec.timeWindow[0].duration",
      `${String(first.duration)}: only m, h, d and w windows map to a rolling duration`,
    );
  }
  return window;
}

/** One burn-rate condition (inline or by conditionRef) as a SafeDeploy rule. */
function burnRule(ctx: Context, raw: unknown, at: string): BurnRateRule | undefined {
  const given = isRecord(raw) ? raw : {};
  if (given.conditionRef !== undefined) {
    const found = ctx.registry.get("AlertCondition", given.conditionRef);
    if (found === undefined) {
      const name = show(given.conditionRef);
      ctx.log.unmapped(ctx.source, `${at}.conditionRef`, `no AlertCondition named ${name}`);
      return undefined;
    }
    // What is wrong with a referenced condition is reported where it is written.
    return burnRule({ ...ctx, source: found.source }, { spec: found.spec }, "");
  }
  const spec = specOf(given);
  const where = (field: string) => [at, field].filter((p) => p !== "").join(".");
  const rule = isRecord(spec.condition) ? spec.condition : {};
  const kind = typeof rule.kind === "string" ? rule.kind.toLowerCase() : "burnrate";
  const op = rule.op ?? "gt";
  if (kind !== "burnrate" || (op !== "gt" && op !== "gte")) {
    ctx.log.unmapped(
      ctx.source,
      where("spec.condition"),
      `only burn-rate conditions with op gt or gte map to a burn-rate rule (got ${kind} ${show(op)})`,
    );
    return undefined;
  }
  const long = promDuration(rule.lookbackWindow);
  if (typeof rule.threshold !== "number" || rule.threshold <= 0 || long === undefined) {
    ctx.log.unmapped(
      ctx.source,
      where("spec.condition"),
      "needs a positive threshold and a lookbackWindow in m, h, d or w",
    );
    return undefined;
  }
  if (rule.alertAfter !== undefined) {
    ctx.log.ignored(
      ctx.source,
      where("spec.condition.alertAfter"),
      "SafeDeploy confirms a burn with a short window (lookbackWindow / 12), not a delay",
    );
  }
  // The SRE Workbook pairs each long window with a short one of 1/12 its length.
  const twelfth = Math.round((parseDuration(long) ?? 0) / 12 / 60_000) * 60_000;
  const short = formatDuration(Math.max(60_000, twelfth));
  const severity = rule.threshold >= 6 ? "fast-burn" : "slow-burn";
  return { severity, factor: rule.threshold, long, short };
}

/** The burn-rate rules of an SLO's alert policies (inline or by alertPolicyRef). */
function burnRules(outer: Context, spec: Rec): BurnRateRule[] | undefined {
  if (!Array.isArray(spec.alertPolicies) || spec.alertPolicies.length === 0) return undefined;
  const rules: BurnRateRule[] = [];
  spec.alertPolicies.forEach((raw: unknown, i) => {
    let ctx = outer;
    let at = `spec.alertPolicies[${i}].spec`;
    let policy = isRecord(raw) ? specOf(raw) : {};
    if (isRecord(raw) && raw.alertPolicyRef !== undefined) {
      const found = ctx.registry.get("AlertPolicy", raw.alertPolicyRef);
      if (found === undefined) {
        const name = show(raw.alertPolicyRef);
        ctx.log.unmapped(
          ctx.source,
          `spec.alertPolicies[${i}].alertPolicyRef`,
          `no AlertPolicy named ${name}`,
        );
        return;
      }
      // What is wrong with a referenced policy is reported where it is written.
      ctx = { ...outer, source: found.source };
      at = "spec";
      policy = found.spec;
    }
    const conditions = Array.isArray(policy.conditions) ? policy.conditions : [];
    conditions.forEach((c: unknown, j) => {
      const rule = burnRule(ctx, c, `${at}.conditions[${j}]`);
      if (rule !== undefined) rules.push(rule);
    });
  });
  // Fastest first: the policy checks rules in order and the first that fires sets the severity.
  return rules.length === 0 ? undefined : rules.sort((a, b) => b.factor - a.factor);
}

/** The SafeDeploy SLOs of one OpenSLO SLO: one per objective. */
function slosOf(ctx: Context, value: Rec): Slo[] {
  const spec = specOf(value);
  if (spec.budgetingMethod !== undefined && spec.budgetingMethod !== "Occurrences") {
    ctx.log.unmapped(
      ctx.source,
      "spec.budgetingMethod",
      `${show(spec.budgetingMethod)}: SafeDeploy budgets count events (Occurrences)`,
    );
    return [];
  }
  let sli: Rec | undefined;
  let sliAt = "spec.indicator.spec";
  if (isRecord(spec.indicator)) sli = specOf(spec.indicator);
  else {
    sli = ctx.registry.get("SLI", spec.indicatorRef)?.spec;
    sliAt = "spec.indicatorRef";
    if (sli === undefined) {
      ctx.log.unmapped(ctx.source, sliAt, `no SLI named ${String(spec.indicatorRef)}`);
      return [];
    }
  }
  const queries = sliQueries(ctx, sli, sliAt);
  const window = windowOf(ctx, spec);
  if (queries === undefined || window === undefined) return [];
  const objectives = Array.isArray(spec.objectives) ? spec.objectives : [];
  if (objectives.length === 0)
    ctx.log.unmapped(ctx.source, "spec.objectives", "needs at least one objective");
  return objectives.flatMap((raw: unknown, i): Slo[] => {
    const at = `spec.objectives[${i}]`;
    const objective = isRecord(raw) ? raw : {};
    if (objective.op !== undefined || objective.value !== undefined) {
      ctx.log.unmapped(ctx.source, at, "objectives with op and value are for threshold SLIs");
      return [];
    }
    const percent =
      typeof objective.targetPercent === "number"
        ? objective.targetPercent
        : typeof objective.target === "number"
          ? percentOf(objective.target)
          : undefined;
    const name = objectives.length === 1 ? nameOf(value) : `${String(nameOf(value))}-${i + 1}`;
    const checked = checkSlo({ name, objective: percent, window, sli: queries });
    if (checked.ok) return [checked.slo];
    for (const problem of checked.problems) ctx.log.unmapped(ctx.source, at, problem);
    return [];
  });
}

const IGNORED_KINDS = new Set([
  "AlertNotificationTarget",
  "Service",
  "DataSource",
  "SLI",
  "AlertPolicy",
  "AlertCondition",
]);

/**
 * OpenSLO v1 → Services: each `SLO` with a Prometheus `ratioMetric` (good or bad, and total;
 * inline or by `indicatorRef`, data sources by `metricSourceRef`), a rolling `timeWindow` and
 * Occurrences budgeting becomes an SLO of the Service `spec.service`; burn-rate `AlertPolicy`
 * conditions become the service's `policy.burnRates`. What does not map is reported. Pure.
 */
export function importOpenSlo(
  sources: readonly SourceDocument[],
  options: ImportOptions,
): ImportResult {
  const log = new IssueLog();
  const registry = new Registry();
  const v1 = sources.filter((source) => {
    if (source.value.apiVersion === "openslo/v1") return true;
    log.unmapped(
      source,
      "apiVersion",
      `${String(source.value.apiVersion)}: only openslo/v1 is imported`,
    );
    return false;
  });
  for (const source of v1) registry.add(source);
  const byService = new Map<
    string,
    { slos: Slo[]; rules: BurnRateRule[][]; owner?: string; source: SourceDocument }
  >();
  for (const source of v1) {
    const kind = source.value.kind;
    if (kind !== "SLO") {
      if (!IGNORED_KINDS.has(String(kind)))
        log.ignored(source, "kind", `${String(kind)} has no SafeDeploy counterpart`);
      continue;
    }
    const ctx: Context = { source, registry, log };
    const service = specOf(source.value).service;
    const problem = nameProblem(service) ?? nameProblem(nameOf(source.value));
    if (problem !== undefined) {
      log.unmapped(
        source,
        nameProblem(service) === undefined ? "metadata.name" : "spec.service",
        `${problem}; SafeDeploy names are [a-z0-9-]`,
      );
      continue;
    }
    const slos = slosOf(ctx, source.value);
    if (slos.length === 0) continue;
    const rules = burnRules(ctx, specOf(source.value));
    const entry = byService.get(service as string) ?? { slos: [], rules: [], source };
    const label = labelsOf(source.value).owner ?? registry.get("Service", service)?.labels.owner;
    byService.set(service as string, {
      ...entry,
      slos: [...entry.slos, ...slos],
      rules: rules === undefined ? entry.rules : [...entry.rules, rules],
      ...(typeof label === "string" && label.trim() !== "" ? { owner: label } : {}),
    });
  }
  const services: ImportedService[] = [...byService].map(([name, entry]) => {
    const [first, ...others] = entry.rules;
    const same = others.every((rules) => JSON.stringify(rules) === JSON.stringify(first));
    if (!same) {
      log.unmapped(
        entry.source,
        "spec.alertPolicies",
        `the SLOs of ${name} have different burn-rate alert policies; SafeDeploy has one table per service, so none was imported`,
      );
    }
    return {
      document: serviceDocument(
        name,
        entry.owner ?? options.owner,
        entry.slos,
        options,
        same ? first : undefined,
      ),
      source: { file: entry.source.file, document: entry.source.document },
      sloNames: entry.slos.map((slo) => slo.name),
    };
  });
  return { services, issues: log.issues };
}
