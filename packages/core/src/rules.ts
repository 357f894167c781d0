import { renderSliQuery } from "./promql.js";

/** What the rule generator needs to know about one SLO. */
export interface RuleSlo {
  readonly service: string;
  readonly slo: string;
  readonly objective: number;
  readonly errorQuery: string;
  readonly totalQuery: string;
}

export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly RecordingRule[];
}

/** Sloth's name for the error ratio over a window, e.g. `slo:sli_error:ratio_rate5m`. */
export function errorRatioRecord(window: string): string {
  return `slo:sli_error:ratio_rate${window}`;
}

/**
 * SafeDeploy's extension beside Sloth's ratio: the request rate over the window, so low traffic
 * (below `minEvents`) is recognised as no-data in recorded mode too.
 */
export function totalRateRecord(window: string): string {
  return `safedeploy:sli_total:rate${window}`;
}

/** The labels every rule of an SLO carries, as Sloth sets them. */
export function sloLabels(slo: Pick<RuleSlo, "service" | "slo">): Record<string, string> {
  return { sloth_service: slo.service, sloth_slo: slo.slo, sloth_id: `${slo.service}-${slo.slo}` };
}

/**
 * Prometheus recording rules for every SLO and window, one group per SLO as Sloth generates them:
 * `slo:sli_error:ratio_rate<window>` (Sloth's naming and labels), `safedeploy:sli_total:rate<window>`
 * and `slo:objective:ratio`. Reading one record name returns every SLO at once.
 */
export function recordingRuleGroups(
  slos: readonly RuleSlo[],
  windows: readonly string[],
): RuleGroup[] {
  return slos.map((slo) => {
    const labels = sloLabels(slo);
    const rules: RecordingRule[] = [];
    for (const window of windows) {
      const errors = renderSliQuery(slo.errorQuery, window);
      const total = renderSliQuery(slo.totalQuery, window);
      // An error series that never existed is an empty vector, not zero: fall back to 0 × total
      // so a healthy service records ratio 0 instead of nothing.
      rules.push({
        record: errorRatioRecord(window),
        expr: `((${errors}) or ((${total}) * 0))\n/\n(${total})`,
        labels,
      });
      rules.push({ record: totalRateRecord(window), expr: total, labels });
    }
    rules.push({
      record: "slo:objective:ratio",
      expr: `vector(${Number((slo.objective / 100).toPrecision(12))})`,
      labels,
    });
    return { name: `sloth-slo-sli-recordings-${labels.sloth_id}`, rules };
  });
}
