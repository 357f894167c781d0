// The alerts on SafeDeploy itself (deploy/prometheus/rules/safedeploy-control-plane.yml) under
// the real promtool: the file is valid, each alert fires on the failure it names and stays quiet
// on its healthy neighbour (`promtool test rules`), and every metric it reads is one a service
// really exports, so renaming a metric breaks this test instead of silencing an alert.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { findExecutable } from "@safedeploy/testing";

const run = promisify(execFile);
const RULES = new URL("../../deploy/prometheus/rules/safedeploy-control-plane.yml", import.meta.url)
  .pathname;
const SERVICES = new URL("../../services/", import.meta.url).pathname;

interface Rule {
  alert: string;
  expr: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rules = (
  parse(readFileSync(RULES, "utf8")) as { groups: { rules: Rule[] }[] }
).groups.flatMap((group) => group.rules);

function promtool(): string {
  const found = findExecutable("promtool");
  if (found === undefined)
    throw new Error("promtool not found: apt-get install prometheus (bash .ci/run does)");
  return found;
}

/**
 * One alert as promtool must see it: the rule's labels and annotations, rendered for `labels`
 * (and `$value`, already humanized, where an annotation shows it).
 */
function firing(alert: string, labels: Record<string, string> = {}, at: { value?: string } = {}) {
  const rule = rules.find((r) => r.alert === alert);
  if (rule === undefined) throw new Error(`no alert ${alert} in ${RULES}`);
  const render = (text: string) =>
    text
      .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? "")
      .replace(/\{\{ \$value \| humanize \}\}/g, at.value ?? "");
  return {
    exp_labels: { ...labels, ...rule.labels },
    exp_annotations: Object.fromEntries(
      Object.entries(rule.annotations).map(([key, text]) => [key, render(text)]),
    ),
  };
}

const series = (metric: string, labels: Record<string, string>, values: string) => ({
  series: `${metric}{${Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(", ")}}`,
  values,
});
const target = (service: string) => ({
  job: "safedeploy",
  instance: `${service}:9464`,
  service,
});
/** A counter growing by one a minute for 30 minutes, and one that never moves. */
const growing = "0+1x30";
const flat = "5x30";

const cases = [
  {
    name: "a service whose /metrics stops answering",
    input_series: [
      series("up", { job: "safedeploy", instance: "collector:9464" }, "1 1 0x10"),
      series("up", { job: "safedeploy", instance: "budget:9464" }, "1x12"),
    ],
    alert_rule_test: [
      { eval_time: "3m", alertname: "SafeDeployServiceDown", exp_alerts: [] },
      {
        eval_time: "5m",
        alertname: "SafeDeployServiceDown",
        exp_alerts: [
          firing("SafeDeployServiceDown", { job: "safedeploy", instance: "collector:9464" }),
        ],
      },
    ],
  },
  {
    name: "Prometheus unreachable, then answering again",
    input_series: [
      series("safedeploy_collector_prometheus_failures_total", target("collector"), "0+1x10 10x20"),
    ],
    alert_rule_test: [
      {
        eval_time: "10m",
        alertname: "SafeDeployPrometheusUnreachable",
        exp_alerts: [firing("SafeDeployPrometheusUnreachable")],
      },
      { eval_time: "25m", alertname: "SafeDeployPrometheusUnreachable", exp_alerts: [] },
    ],
  },
  {
    name: "poll jobs dropped as stale, not for an unknown service",
    input_series: [
      series(
        "safedeploy_collector_jobs_skipped_total",
        { ...target("collector"), reason: "stale" },
        growing,
      ),
      series(
        "safedeploy_collector_jobs_skipped_total",
        { ...target("collector"), reason: "unknown-service" },
        growing,
      ),
    ],
    alert_rule_test: [
      { eval_time: "5m", alertname: "SafeDeployCollectorBehind", exp_alerts: [] },
      {
        eval_time: "25m",
        alertname: "SafeDeployCollectorBehind",
        exp_alerts: [firing("SafeDeployCollectorBehind")],
      },
    ],
  },
  {
    name: "unknown evaluations, beside normal ones",
    input_series: [
      series(
        "safedeploy_budget_evaluations_total",
        { ...target("budget"), severity: "unknown" },
        growing,
      ),
      series(
        "safedeploy_budget_evaluations_total",
        { ...target("budget"), severity: "normal" },
        growing,
      ),
    ],
    alert_rule_test: [
      {
        eval_time: "25m",
        alertname: "SafeDeploySliQueriesFailing",
        exp_alerts: [firing("SafeDeploySliQueriesFailing")],
      },
    ],
  },
  {
    name: "only normal evaluations",
    input_series: [
      series(
        "safedeploy_budget_evaluations_total",
        { ...target("budget"), severity: "normal" },
        growing,
      ),
    ],
    alert_rule_test: [
      { eval_time: "25m", alertname: "SafeDeploySliQueriesFailing", exp_alerts: [] },
    ],
  },
  {
    name: "one stream's batches failing",
    input_series: [
      series(
        "safedeploy_audit_batch_failures_total",
        { ...target("audit"), stream: "BUDGET" },
        growing,
      ),
      series(
        "safedeploy_audit_batch_failures_total",
        { ...target("audit"), stream: "METRICS" },
        flat,
      ),
    ],
    alert_rule_test: [
      {
        eval_time: "10m",
        alertname: "SafeDeployAuditFailing",
        exp_alerts: [firing("SafeDeployAuditFailing", { stream: "BUDGET" })],
      },
    ],
  },
  {
    name: "the collector publishes and the audit log does not grow",
    input_series: [
      series("safedeploy_collector_snapshots_total", target("collector"), growing),
      series(
        "safedeploy_audit_messages_stored_total",
        { ...target("audit"), stream: "METRICS" },
        flat,
      ),
    ],
    alert_rule_test: [
      {
        eval_time: "25m",
        alertname: "SafeDeployAuditStalled",
        exp_alerts: [firing("SafeDeployAuditStalled")],
      },
    ],
  },
  {
    name: "the audit service never stored anything while the collector publishes",
    input_series: [series("safedeploy_collector_snapshots_total", target("collector"), growing)],
    alert_rule_test: [
      {
        eval_time: "25m",
        alertname: "SafeDeployAuditStalled",
        exp_alerts: [firing("SafeDeployAuditStalled")],
      },
    ],
  },
  {
    name: "the audit log grows with the collector",
    input_series: [
      series("safedeploy_collector_snapshots_total", target("collector"), growing),
      series(
        "safedeploy_audit_messages_stored_total",
        { ...target("audit"), stream: "METRICS" },
        "0+2x30",
      ),
    ],
    alert_rule_test: [{ eval_time: "25m", alertname: "SafeDeployAuditStalled", exp_alerts: [] }],
  },
  {
    name: "a burst of dead letters, then none",
    input_series: [
      series(
        "safedeploy_audit_messages_stored_total",
        { ...target("audit"), stream: "DEADLETTER" },
        "0 0 3 3x30",
      ),
    ],
    alert_rule_test: [
      {
        eval_time: "5m",
        alertname: "SafeDeployDeadLetters",
        exp_alerts: [firing("SafeDeployDeadLetters", {}, { value: "3" })],
      },
      { eval_time: "25m", alertname: "SafeDeployDeadLetters", exp_alerts: [] },
    ],
  },
];

/** The names every service registers (`name: "safedeploy_…"` in services/*\/src). */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts"))
        for (const match of readFileSync(path, "utf8").matchAll(/name: "(safedeploy_\w+)"/g))
          if (match[1] !== undefined) names.add(match[1]);
    }
  };
  for (const service of readdirSync(SERVICES)) walk(join(SERVICES, service, "src"));
  return names;
}

describe("alerts on the control plane itself", () => {
  it("promtool accepts the rules", async () => {
    const { stdout } = await run(promtool(), ["check", "rules", RULES]);
    expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("each alert fires on its failure and not on its healthy neighbour (promtool test rules)", async () => {
    const tested = new Set(cases.flatMap((c) => c.alert_rule_test.map((t) => t.alertname)));
    expect([...tested].sort()).toEqual(rules.map((r) => r.alert).sort());
    const file = join(mkdtempSync(join(tmpdir(), "sd-alerts-")), "alerts.test.yml");
    writeFileSync(
      file,
      stringify({
        rule_files: [RULES],
        evaluation_interval: "1m",
        tests: cases.map((c) => ({
          interval: "1m",
          input_series: c.input_series,
          alert_rule_test: c.alert_rule_test,
        })),
      }),
    );
    // promtool exits 1 on a failed expectation; its output says which alert, when, expected and got.
    const output = await run(promtool(), ["test", "rules", file]).then(
      ({ stdout, stderr }) => stdout + stderr,
      (error: unknown) => {
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        return `${stdout ?? ""}${stderr ?? ""}`;
      },
    );
    expect(output).toContain("SUCCESS");
    expect(output).not.toContain("FAILED");
  });

  it("reads only metrics the services export", () => {
    const exported = exportedMetrics();
    const read = new Set(
      rules.flatMap((r) => [...r.expr.matchAll(/\b(safedeploy_\w+)/g)].map((m) => m[1] ?? "")),
    );
    expect(read.size).toBeGreaterThan(0);
    expect([...read].filter((name) => !exported.has(name))).toEqual([]);
  });
});
