import type { EventData } from "@safedeploy/schema";

/** What a deploy-recorded event says triggered it. */
export type DeployTrigger = EventData<"governance.deploy-recorded">["trigger"];

/** The triggers that mean a revision is running in production: a deploy for DORA. */
export const DEPLOY_TRIGGERS: readonly DeployTrigger[] = ["on-deployed", "on-rollout-completed"];

/** One `governance.deploy-recorded` as the audit log holds it. */
export interface DoraDeployEvent {
  readonly service: string;
  readonly revision: string;
  readonly trigger: DeployTrigger;
  readonly at: string;
  readonly commitTime: string | null;
}

/** One deploy: a revision of a service reaching production, whatever reported it how often. */
export interface Deploy {
  readonly service: string;
  readonly revision: string;
  /** The earliest report that it runs. */
  readonly at: string;
  /** When the revision was committed, when any report said so. */
  readonly commitTime: string | null;
}

/** An incident, with when it was first resolved (null while it is not). */
export interface DoraIncident {
  readonly id: string;
  readonly service: string;
  readonly openedAt: string;
  readonly resolvedAt: string | null;
}

/**
 * A sign that production was rolled back: an executed rollback (git actuator) or an aborted
 * rollout (Argo Rollouts).
 */
export interface DoraRollback {
  readonly service: string;
  readonly at: string;
  readonly kind: "rollback-executed" | "rollout-aborted";
}

/** Durations in seconds over their samples; null statistics without samples. */
export interface DurationStats {
  readonly samples: number;
  readonly medianSeconds: number | null;
  readonly p90Seconds: number | null;
  readonly meanSeconds: number | null;
}

/** The four DORA keys over one range for one service, one team, or everything chosen. */
export interface DoraMetrics {
  /** Deploys whose time is in [since, until). */
  readonly deploys: number;
  readonly deploysPerDay: number;
  /** Commit → deploy, over the deploys that know their commit time. */
  readonly leadTime: DurationStats;
  /** Deploys in range followed, within the window, by an incident or a rollback. */
  readonly failedDeploys: number;
  /** failedDeploys / deploys; null without deploys. */
  readonly changeFailureRate: number | null;
  /** Incidents opened in range. */
  readonly incidents: number;
  /** Of those, the ones not resolved (yet). */
  readonly unresolvedIncidents: number;
  /** Opened → first resolved, over the resolved incidents opened in range. */
  readonly timeToRestore: DurationStats;
}

export interface DoraInput {
  readonly since: string;
  readonly until: string;
  /** How long after a deploy an incident or rollback counts as its failure. */
  readonly failureWindowMs: number;
  /** Deploy events of any time (earlier and later ones decide which deploy a failure belongs to). */
  readonly deployEvents: readonly DoraDeployEvent[];
  readonly incidents: readonly DoraIncident[];
  readonly rollbacks: readonly DoraRollback[];
  /** The catalog owner (team) of each service. */
  readonly owners: Readonly<Record<string, string>>;
  readonly filter?: { readonly service?: string | undefined; readonly team?: string | undefined };
}

export interface DoraReport {
  readonly since: string;
  readonly until: string;
  readonly failureWindowMs: number;
  readonly overall: DoraMetrics;
  readonly services: readonly ({ service: string; team: string | null } & DoraMetrics)[];
  readonly teams: readonly ({ team: string | null } & DoraMetrics)[];
}

const DAY_MS = 86_400_000;
const ms = (time: string): number => Date.parse(time);

/**
 * The deploys among deploy events: only {@link DEPLOY_TRIGGERS}, one per (service, revision) at the
 * earliest report (Argo CD's on-deployed and Argo Rollouts' on-rollout-completed of one revision
 * are one deploy), sorted by time then service.
 */
export function deploysOf(events: readonly DoraDeployEvent[]): Deploy[] {
  const byKey = new Map<string, Deploy>();
  for (const event of events) {
    if (!DEPLOY_TRIGGERS.includes(event.trigger) || Number.isNaN(ms(event.at))) continue;
    const key = `${event.service}\u0000${event.revision}`;
    const known = byKey.get(key);
    const commitTime = known?.commitTime ?? event.commitTime;
    const at = known === undefined || ms(event.at) < ms(known.at) ? event.at : known.at;
    byKey.set(key, { service: event.service, revision: event.revision, at, commitTime });
  }
  return [...byKey.values()].sort(
    (a, b) => ms(a.at) - ms(b.at) || (a.service < b.service ? -1 : a.service > b.service ? 1 : 0),
  );
}

/** Median (mean of the middle two), nearest-rank 90th percentile and mean of seconds. */
export function durationStats(seconds: readonly number[]): DurationStats {
  const sorted = [...seconds].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { samples: 0, medianSeconds: null, p90Seconds: null, meanSeconds: null };
  const middle = Math.floor(n / 2);
  const at = (index: number) => sorted[index] ?? 0;
  const median = n % 2 === 1 ? at(middle) : (at(middle - 1) + at(middle)) / 2;
  const p90 = at(Math.max(0, Math.ceil(0.9 * n) - 1));
  const mean = sorted.reduce((sum, value) => sum + value, 0) / n;
  return { samples: n, medianSeconds: median, p90Seconds: p90, meanSeconds: mean };
}

/**
 * The deploys a failure signal at `at` belongs to: the service's latest deploy at or before it,
 * when within the window (a later deploy takes the blame from an earlier one).
 */
function blamedDeploy(deploys: readonly Deploy[], at: number, windowMs: number): Deploy | null {
  let blamed: Deploy | null = null;
  for (const deploy of deploys) {
    if (ms(deploy.at) <= at) blamed = deploy;
    else break;
  }
  return blamed !== null && at - ms(blamed.at) <= windowMs ? blamed : null;
}

function metricsOf(
  deploys: readonly Deploy[],
  failed: ReadonlySet<Deploy>,
  incidents: readonly DoraIncident[],
  rangeMs: number,
): DoraMetrics {
  // A negative duration means the clocks disagree: left out rather than counted as zero.
  const lead = deploys.flatMap((d) =>
    d.commitTime === null || ms(d.at) < ms(d.commitTime)
      ? []
      : [(ms(d.at) - ms(d.commitTime)) / 1000],
  );
  const restored = incidents.flatMap((i) =>
    i.resolvedAt === null || ms(i.resolvedAt) < ms(i.openedAt)
      ? []
      : [(ms(i.resolvedAt) - ms(i.openedAt)) / 1000],
  );
  const failedDeploys = deploys.filter((d) => failed.has(d)).length;
  return {
    deploys: deploys.length,
    deploysPerDay: rangeMs > 0 ? deploys.length / (rangeMs / DAY_MS) : 0,
    leadTime: durationStats(lead),
    failedDeploys,
    changeFailureRate: deploys.length === 0 ? null : failedDeploys / deploys.length,
    incidents: incidents.length,
    unresolvedIncidents: incidents.filter((i) => i.resolvedAt === null).length,
    timeToRestore: durationStats(restored),
  };
}

const inRange = (time: string, since: number, until: number) => {
  const t = ms(time);
  return t >= since && t < until;
};

/** Groups by a key, keeping first-seen order. */
function groupBy<T, K>(items: readonly T[], keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  return groups;
}

/**
 * DORA's four keys over [since, until), per service, per team (the catalog owner) and overall.
 * A deploy is a {@link deploysOf} deploy; it failed when, within `failureWindowMs` after it and
 * before the service's next deploy, an incident of its service opened or it was rolled back.
 * Time to restore is incident opened → first resolved, for incidents opened in range.
 */
export function doraReport(input: DoraInput): DoraReport {
  const since = ms(input.since);
  const until = ms(input.until);
  const teamOf = (service: string): string | null => input.owners[service] ?? null;
  const chosen = (service: string) =>
    (input.filter?.service === undefined || input.filter.service === service) &&
    (input.filter?.team === undefined || input.filter.team === teamOf(service));

  const all = deploysOf(input.deployEvents).filter((d) => chosen(d.service));
  const perService = groupBy(all, (d) => d.service);
  const failed = new Set<Deploy>();
  const signals = [
    ...input.incidents.map((i) => ({ service: i.service, at: i.openedAt })),
    ...input.rollbacks,
  ];
  for (const signal of signals) {
    const blamed = blamedDeploy(
      perService.get(signal.service) ?? [],
      ms(signal.at),
      input.failureWindowMs,
    );
    if (blamed !== null) failed.add(blamed);
  }
  const deploys = all.filter((d) => inRange(d.at, since, until));
  const incidents = input.incidents.filter(
    (i) => chosen(i.service) && inRange(i.openedAt, since, until),
  );
  const rangeMs = Math.max(0, until - since);
  const of = (services: ReadonlySet<string>) =>
    metricsOf(
      deploys.filter((d) => services.has(d.service)),
      failed,
      incidents.filter((i) => services.has(i.service)),
      rangeMs,
    );
  const names = [...new Set([...deploys, ...incidents].map((x) => x.service))].sort();
  const teams = groupBy(names, teamOf);
  const teamNames = [...teams.keys()].sort((a, b) => (a ?? "").localeCompare(b ?? ""));
  return {
    since: input.since,
    until: input.until,
    failureWindowMs: input.failureWindowMs,
    overall: metricsOf(deploys, failed, incidents, rangeMs),
    services: names.map((service) => ({
      service,
      team: teamOf(service),
      ...of(new Set([service])),
    })),
    teams: teamNames.map((team) => ({ team, ...of(new Set(teams.get(team))) })),
  };
}
