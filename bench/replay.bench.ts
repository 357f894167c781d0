// Replay: `safedeploy replay` (the real command, through runCli) folding a history of
// BENCH_EVENTS (default 100,000) events of one service stored in real JetStream: SLI snapshots,
// the budget evaluations the budget service would have recorded for them, and the verdicts the
// policy service would have published. Times the whole command (reading every stream from
// JetStream, decoding, folding through the core, comparing); reports events/s (target ≥ 20,000).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "@safedeploy/cli";
import { loadCatalog } from "@safedeploy/catalog";
import { evaluateSnapshot, gateDeclaration, replayService } from "@safedeploy/core";
import type { ReplayPolicy } from "@safedeploy/core";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { createEnvelope, messageId, parseDuration, staleAfterMs } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import {
  benchMachine,
  createTestBus,
  gateReason,
  loadAverage,
  serviceYaml,
  sliSnapshotEvent,
  targetLine,
  verdictEvent,
  writeBenchResult,
} from "@safedeploy/testing";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const TARGET = 20_000;
const SERVICE = "checkout";
const WINDOWS = ["5m", "30m", "1h", "6h", "3d", "30d"];
const log = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);

// Evidence 30 s apart, ending now; now and then errors in the 5m window alone (no rule fires).
const pairs = Math.floor(EVENTS / 2);
const start = Date.now() - pairs * 30_000;
function snapshot(i: number): Envelope<"metrics.snapshot"> {
  const at = new Date(start + i * 30_000).toISOString();
  const burning = i % 5_000 >= 2_000 && i % 5_000 < 2_010;
  return sliSnapshotEvent(
    SERVICE,
    at,
    WINDOWS.map((window) => ({
      window,
      errorQuery: "errors",
      totalQuery: "total",
      errors: window === "5m" && burning ? 30 : 0.5,
      total: 1000,
      status: "ok" as const,
    })),
  );
}

// The policy exactly as `safedeploy replay` builds it from the catalog.
const dir = mkdtempSync(join(tmpdir(), "sd-bench-replay-"));
writeFileSync(
  join(dir, "catalog.yaml"),
  serviceYaml(SERVICE, {
    objective: 99.9,
    spec: "  deployment: { strategy: canary, canary: { steps: [10, 50, 100], bakeTime: 30s } }\n",
  }),
);
const catalog = await loadCatalog(join(dir, "catalog.yaml"));
const service = catalog.ok ? catalog.catalog.services[0] : undefined;
if (service === undefined) throw new Error("the bench catalog is invalid");
const resolved = service.policy;
const policy: ReplayPolicy = {
  burnRules: resolved.burnRates,
  incident: {
    openIncidentOn: resolved.openIncidentOn,
    resolveAfterMs: parseDuration(resolved.resolveAfter) ?? 900_000,
    sloNames: ["availability"],
  },
  gate: gateDeclaration(service.spec, resolved, staleAfterMs(resolved, 30_000)),
  freezeOnExhaustionMs: parseDuration(resolved.freezeOnExhaustion) ?? 86_400_000,
};
/** The evaluation the budget service records for a snapshot (services/budget, same core). */
function evaluation(s: Envelope<"metrics.snapshot">): Envelope<"budget.evaluated"> {
  const { data } = s;
  return createEnvelope(
    {
      type: "budget.evaluated",
      id: messageId("budget.evaluated", s.id),
      service: SERVICE,
      data: {
        snapshotId: s.id,
        evaluatedAt: data.evaluatedAt,
        slos: evaluateSnapshot(data, policy.burnRules, policy.gate.service.safetyMargin),
      },
    },
    { source: "budget", time: data.evaluatedAt, causedBy: s },
  );
}

// The history, and the verdicts the policy service would publish on it (the core's own fold).
const history: Envelope[] = [];
for (let i = 0; i < pairs; i++) {
  const s = snapshot(i);
  history.push(s, evaluation(s));
}
const verdictsAt = new Map<string, string>();
try {
  for (const d of replayService(history, policy).derived) {
    if (d.kind === "verdict") verdictsAt.set(d.at, d.summary);
  }
} catch (error) {
  log(`could not pre-compute verdicts (${String(error)}); the replay will report differences`);
}
const timeline: Envelope[] = [];
for (const message of history) {
  timeline.push(message);
  const summary =
    message.type === "budget.evaluated" ? verdictsAt.get(message.data.evaluatedAt) : undefined;
  if (summary !== undefined && message.type === "budget.evaluated") {
    const codes = summary === "pass" ? [] : (summary.split(": ")[1] ?? "").split(", ");
    timeline.push(
      verdictEvent(
        SERVICE,
        message.data.evaluatedAt,
        codes.map((code) => gateReason(code)),
        {
          causeId: message.id,
        },
      ),
    );
  }
}

// Stored in JetStream in order (one at a time per stream would be slow: windows, in order).
const harness = await createTestBus();
await provision(harness.bus);
const since = new Date(Date.now() - 1_000).toISOString();
const publishStarted = Date.now();
const WINDOW = 256;
for (let from = 0; from < timeline.length; from += WINDOW) {
  await Promise.all(
    timeline.slice(from, from + WINDOW).map((message) => publishEvent(harness.bus, message)),
  );
}
log(`published ${timeline.length} events in ${Date.now() - publishStarted} ms`);

let stdout = "";
let stderr = "";
const loadBefore = loadAverage();
const started = performance.now();
const code = await runCli({
  argv: ["replay", "--service", SERVICE, "--since", since, "--warmup", "1m", "--json"],
  env: {
    NATS_URL: harness.url,
    SAFEDEPLOY_CATALOG: join(dir, "catalog.yaml"),
    SAFEDEPLOY_SUBJECT_ROOT: harness.bus.ns.root,
    SAFEDEPLOY_STREAM_PREFIX: harness.bus.ns.prefix,
    SAFEDEPLOY_POLL_INTERVAL: "30s",
  },
  cwd: dir,
  stdout: (text) => (stdout += text),
  stderr: (text) => (stderr += text),
});
const ms = performance.now() - started;
const answer = JSON.parse(stdout || "{}") as {
  messages?: number;
  identical?: boolean;
  firstDifference?: unknown;
};
const perSecond = (answer.messages ?? 0) / (ms / 1_000);
const pass = perSecond >= TARGET && answer.messages === timeline.length;
const result = {
  benchmark: "replay.fold",
  events: timeline.length,
  read: answer.messages ?? null,
  identical: answer.identical ?? null,
  firstDifference: answer.firstDifference ?? null,
  exitCode: code,
  ms: Math.round(ms),
  eventsPerSecond: Math.round(perSecond),
  target: { eventsPerSecond: TARGET },
  pass,
  machine: benchMachine(loadBefore),
  node: process.version,
  at: new Date().toISOString(),
};
writeBenchResult(new URL("results/replay.json", import.meta.url), result);
log(JSON.stringify(result));
if (stderr !== "") log(`replay said: ${stderr.slice(0, 500)}`);
log(
  targetLine(
    pass,
    "replay",
    `${Math.round(perSecond).toLocaleString("en")} events/s over ${answer.messages ?? 0} events (target ≥ ${TARGET.toLocaleString("en")})`,
  ),
);
await harness.cleanup();
process.exit(0);
