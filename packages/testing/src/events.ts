import { createEnvelope, messageId } from "@safedeploy/schema";
import type {
  BudgetStatus,
  Burn,
  Envelope,
  GateReason,
  Severity,
  SliWindow,
} from "@safedeploy/schema";

/** A service's budget evaluation at `at` holding one SLO, as the budget service would publish it. */
export function budgetEvaluationEvent(
  service: string,
  at: string,
  severity: Severity,
  options: {
    slo?: string;
    objective?: number;
    budgetRemaining?: number | null;
    burn1h?: number;
    /** Default: the severity's burn (`unknown` for exhausted). */
    burn?: Burn;
    /** Default: from the budget left (`exhausted` at or under 0, else `ok`). */
    budget?: BudgetStatus | null;
  } = {},
): Envelope<"budget.evaluated"> {
  const slo = options.slo ?? "availability";
  const remaining =
    options.budgetRemaining === undefined
      ? severity === "exhausted"
        ? -0.1
        : 0.5
      : options.budgetRemaining;
  return createEnvelope(
    {
      type: "budget.evaluated",
      id: messageId("budget.evaluated", service, slo, at),
      service,
      data: {
        snapshotId: `snap:${service}:${slo}:${at}`,
        evaluatedAt: at,
        slos: [
          {
            slo,
            evaluatedAt: at,
            objective: options.objective ?? 99.9,
            severity,
            burn: options.burn ?? (severity === "exhausted" ? "unknown" : severity),
            budget:
              options.budget !== undefined
                ? options.budget
                : remaining === null
                  ? null
                  : remaining <= 0
                    ? "exhausted"
                    : "ok",
            budgetRemaining: remaining,
            errorRatio: 0.01,
            burnRates:
              options.burn1h === undefined
                ? []
                : [{ window: "1h", errorRatio: 0.001 * options.burn1h, burnRate: options.burn1h }],
            rules: [],
            explanation: severity,
            windows: [],
          },
        ],
      },
    },
    { source: "budget", time: at },
  );
}

/** A gate reason with just a code and a message, for verdicts built in tests. */
export function gateReason(code: string, message = code): GateReason {
  return { code, message, value: null, threshold: null };
}

/** A promotion verdict at `at`, as the policy service would publish it. */
export function verdictEvent(
  service: string,
  at: string,
  reasons: readonly GateReason[],
  options: { causeId?: string } = {},
): Envelope<"governance.verdict"> {
  const blind = ["no-data", "unknown", "stale-evidence"];
  return createEnvelope(
    {
      type: "governance.verdict",
      id: messageId("governance.verdict", service, at),
      service,
      data: {
        allowed: reasons.length === 0,
        verdict:
          reasons.length === 0
            ? "pass"
            : reasons.every((r) => blind.includes(r.code))
              ? "unknown"
              : "block",
        reasons: [...reasons],
        evaluatedAt: at,
        causeId: options.causeId ?? "test",
        evidenceAge: null,
        evidence: [],
      },
    },
    { source: "policy", time: at },
  );
}

/** An SLO incident (fast-burn, P1, availability) opened at `at`, as the incident service would publish it. */
export function incidentOpenedEvent(
  service: string,
  incidentId: string,
  at: string,
  options: { causeId?: string; reason?: string } = {},
): Envelope<"incidents.opened"> {
  return createEnvelope(
    {
      type: "incidents.opened",
      id: messageId("incidents.opened", incidentId),
      service,
      data: {
        incidentId,
        origin: "slo",
        severity: "fast-burn",
        class: "P1",
        slo: "availability",
        openedAt: at,
        causeId: options.causeId ?? messageId("budget.evaluated", service, "availability", at),
        reason: options.reason ?? "availability is fast-burn",
      },
    },
    { source: "incident", time: at },
  );
}

/**
 * A service's SLI snapshot at `at` holding one SLO (availability, 99.9 % over 30d, 100 events
 * at least, direct mode, unless told), as the collector would publish it.
 */
export function sliSnapshotEvent(
  service: string,
  at: string,
  windows: SliWindow[],
  options: { slo?: string; objective?: number; minEvents?: number } = {},
): Envelope<"metrics.snapshot"> {
  return createEnvelope(
    {
      type: "metrics.snapshot",
      id: messageId("metrics.snapshot", service, at),
      service,
      data: {
        evaluatedAt: at,
        slos: [
          {
            slo: options.slo ?? "availability",
            objective: options.objective ?? 99.9,
            sloWindow: "30d",
            minEvents: options.minEvents ?? 100,
            mode: "direct",
            evaluatedAt: at,
            windows,
          },
        ],
      },
    },
    { source: "collector", time: at },
  );
}
