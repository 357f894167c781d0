/** One stored evaluation of one SLO, reduced to what its charts draw. */
export interface EvaluationPoint {
  readonly at: string;
  /** Fraction of the budget left over the SLO window (negative once overspent); null unmeasured. */
  readonly budgetRemaining: number | null;
  /** Burn rate per window, null where it could not be measured. */
  readonly burnRates: readonly { readonly window: string; readonly burnRate: number | null }[];
}

/** Series ready for a chart: one x (seconds since the epoch) and y arrays of the same length. */
export interface SloSeries {
  readonly times: number[];
  readonly budgetRemaining: (number | null)[];
  /** Per window, in the order windows first appear. */
  readonly burnRates: { readonly window: string; readonly values: (number | null)[] }[];
  /** How many evaluations were folded into these points. */
  readonly evaluations: number;
}

/** A moment marked on the charts, from the audit log. */
export interface ChartMarker {
  readonly kind:
    "incident-opened" | "incident-resolved" | "deploy" | "freeze-opened" | "freeze-lifted";
  readonly at: string;
  /** What it refers to: an incident or freeze id, or a deploy's revision. */
  readonly ref: string;
  readonly label: string;
}

/** The largest of two nullable numbers (null only when both are). */
const maxOf = (a: number | null, b: number | null): number | null =>
  a === null ? b : b === null ? a : Math.max(a, b);

/**
 * Chart series from evaluations, at most `maxPoints` of them: evaluations sorted by time are cut
 * into equal time buckets over [first, last]; a bucket's point is at its last evaluation, with
 * that evaluation's budget left (the burn-down is a level) and each window's highest burn rate in
 * the bucket (a short spike must stay visible). Evaluations with an invalid time are left out.
 */
export function sloSeries(points: readonly EvaluationPoint[], maxPoints: number): SloSeries {
  if (!Number.isInteger(maxPoints) || maxPoints < 1) {
    throw new RangeError(`maxPoints must be a positive integer, not ${maxPoints}`);
  }
  const sorted = points
    .map((point) => ({ point, t: Date.parse(point.at) }))
    .filter(({ t }) => !Number.isNaN(t))
    .sort((a, b) => a.t - b.t);
  const windows = [...new Set(sorted.flatMap(({ point }) => point.burnRates.map((r) => r.window)))];
  const series: SloSeries = {
    times: [],
    budgetRemaining: [],
    burnRates: windows.map((window) => ({ window, values: [] })),
    evaluations: sorted.length,
  };
  const first = sorted[0]?.t ?? 0;
  const last = sorted.at(-1)?.t ?? 0;
  const width = (last - first) / maxPoints;
  let bucket = -1;
  for (const { point, t } of sorted) {
    const index = width === 0 ? 0 : Math.min(maxPoints - 1, Math.floor((t - first) / width));
    const rates = windows.map(
      (window) => point.burnRates.find((r) => r.window === window)?.burnRate ?? null,
    );
    if (index !== bucket) {
      bucket = index;
      series.times.push(t / 1000);
      series.budgetRemaining.push(point.budgetRemaining);
      rates.forEach((rate, i) => series.burnRates[i]?.values.push(rate));
      continue;
    }
    const at = series.times.length - 1;
    series.times[at] = t / 1000;
    series.budgetRemaining[at] = point.budgetRemaining;
    rates.forEach((rate, i) => {
      const values = series.burnRates[i]?.values;
      if (values !== undefined) values[at] = maxOf(values[at] ?? null, rate);
    });
  }
  return series;
}
