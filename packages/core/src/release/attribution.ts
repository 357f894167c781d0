/** Which step introduced a failure, from the reports of health, regression and gate checks. */
import { haltsTrain, worstOutcome } from "./checks.js";
import type { CheckOutcome, CheckResult, HaltOn } from "./checks.js";
import type { Attribution, StepReport } from "./types.js";

/** Whether a report fails under `haltOn`, with the evidence that says so. */
export function reportFailure(
  report: StepReport,
  haltOn: HaltOn,
): {
  readonly outcome: CheckOutcome;
  readonly failed: boolean;
  readonly evidence: readonly string[];
} {
  const evidence: string[] = [];
  const outcomes: CheckOutcome[] = [];
  for (const check of report.checks) {
    outcomes.push(check.outcome);
    for (const failure of check.failures) {
      evidence.push(
        `step ${report.step + 1} ${report.service}: ${check.url} (${check.outcome}): ${failure.message}`,
      );
    }
  }
  if (report.regression?.regressed === true) {
    outcomes.push("fatal");
    for (const finding of report.regression.findings) {
      evidence.push(`step ${report.step + 1} ${report.service}: regression: ${finding.message}`);
    }
  }
  const gate = report.gate ?? null;
  if (gate !== null && (!gate.allowed || (gate.verdict ?? "pass") !== "pass")) {
    outcomes.push("fatal");
    const says = gate.verdict === "unknown" ? "gate cannot see (unknown)" : "gate blocks";
    evidence.push(
      `step ${report.step + 1} ${report.service}: ${says}: ${gate.reasons.join("; ") || "no reason given"}`,
    );
  }
  const outcome = worstOutcome(outcomes);
  return { outcome, failed: haltsTrain(outcome, haltOn), evidence };
}

/**
 * Which step introduced a failure. The services that failed their own signals (health checks,
 * regression, gate) are the suspects: exactly one service → its (latest reported) step; two or
 * more at once, or a failing stack check with no per-service signal → ambiguous, for manual
 * triage with the evidence. A step whose reports are healthy is never named.
 */
export function attributeFailure(input: {
  readonly reports: readonly StepReport[];
  readonly stackChecks?: readonly CheckResult[];
  readonly haltOn: HaltOn;
}): Attribution {
  const failing = input.reports
    .map((report) => ({ report, verdict: reportFailure(report, input.haltOn) }))
    .filter(({ verdict }) => verdict.failed);
  const evidence = failing.flatMap(({ verdict }) => verdict.evidence);
  const stackFailing = (input.stackChecks ?? []).filter((check) =>
    haltsTrain(check.outcome, input.haltOn),
  );
  for (const check of stackFailing) {
    for (const failure of check.failures)
      evidence.push(`stack: ${check.url} (${check.outcome}): ${failure.message}`);
  }
  const services = new Set(failing.map(({ report }) => report.service));
  if (services.size === 1) {
    const step = Math.max(...failing.map(({ report }) => report.step));
    const service = failing[0]?.report.service ?? "";
    return { kind: "step", step, service, evidence };
  }
  if (services.size > 1) {
    return {
      kind: "ambiguous",
      steps: [...new Set(failing.map(({ report }) => report.step))].sort((a, b) => a - b),
      evidence: [
        `${services.size} services failing at once: ${[...services].join(", ")}`,
        ...evidence,
      ],
    };
  }
  if (stackFailing.length > 0) {
    return {
      kind: "ambiguous",
      steps: [],
      evidence: ["the stack check failed with no per-service signal", ...evidence],
    };
  }
  return { kind: "none" };
}
