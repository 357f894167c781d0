import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EVENT_DATA, ReleaseTrainDocument, ServiceDocument } from "@safedeploy/schema";
import {
  DEPLOY_PROBE_INTERVAL_MS,
  attributeFailure,
  decideTrain,
  deployProbeDelayMs,
  planTrain,
  releaseManifest,
  startTrain,
} from "@safedeploy/core";
import type { GateReason, GateVerdictKind } from "@safedeploy/schema";
import type {
  CheckResult,
  StepReport,
  TrainAction,
  TrainDecision,
  TrainEvent,
  TrainPlan,
  TrainState,
} from "@safedeploy/core";
import { serviceDocument, validPlan } from "./release-fixtures.js";

const service = serviceDocument;

const services = [
  service("checkout", {
    deployment: { strategy: "canary", canary: { steps: [10, 50, 100], bakeTime: "10m" } },
  }),
  service("cart", { deployment: { strategy: "blue_green" } }),
  service("search", { deployment: { strategy: "rolling", rolling: { maxUnavailable: 2 } } }),
  service("email"),
];

const trainDoc = (steps: unknown[], extra: Record<string, unknown> = {}) =>
  ReleaseTrainDocument.parse({
    apiVersion: "safedeploy.dev/v1",
    kind: "ReleaseTrain",
    metadata: { name: "train-42" },
    spec: { steps, ...extra },
  });

const fourSteps = trainDoc(
  [
    {
      service: "checkout",
      image: "registry.example.com/shop/checkout:v1.6.0",
      guardWindow: "10m",
      checks: [
        { http: "http://checkout.internal/healthz", expect: { json: { "$.status": "ok" } } },
      ],
      regression: { maxErrorRatioIncrease: 2 },
    },
    { service: "cart", patch: { replicas: 3 }, guardWindow: "5m" },
    { service: "search", image: "registry.example.com/shop/search:v2", guardWindow: "1m" },
    { service: "email", image: "registry.example.com/shop/email:v9" },
  ],
  { finalChecks: [{ http: "http://shop.internal/healthz" }] },
);

const plan = (doc = fourSteps): TrainPlan => validPlan(doc, services);

const t0 = "2026-11-24T09:00:00.000Z";
const at = (minutes: number) => new Date(Date.parse(t0) + minutes * 60_000).toISOString();

const okCheck = (url = "http://x.internal/"): CheckResult => ({
  url,
  severity: "fatal",
  outcome: "ok",
  failures: [],
  status: 200,
  latencyMs: 5,
});
const badCheck = (
  outcome: "fatal" | "warning" = "fatal",
  url = "http://x.internal/",
): CheckResult => ({
  url,
  severity: outcome,
  outcome,
  failures: [
    { expectation: "json $.status", expected: "ok", got: "down", message: '$.status is "down"' },
  ],
  status: 200,
  latencyMs: 5,
});
const report = (state: TrainState, step: number, check: CheckResult = okCheck()): StepReport => ({
  step,
  service: state.plan.steps[step]?.service ?? "?",
  checks: [check],
  regression: null,
});

/** The gate's pass of a step. */
const gatePass = (step: number): TrainEvent => ({
  type: "gate-answered",
  step,
  verdict: "pass",
  reasons: [],
  evidenceAge: 12,
});
/** The proposal service's answer for a service needing one approval: the starter's. */
const approvedAtOnce = (step: number): TrainEvent => ({
  type: "approval-answered",
  step,
  state: "approved",
  required: 1,
  approvals: [{ by: "alice", at: t0 }],
});
/** What clears a step for promotion: its gate passes and its proposal is approved at once. */
const clearing = (step: number, minute: number): [TrainEvent, string][] => [
  [gatePass(step), at(minute)],
  [approvedAtOnce(step), at(minute)],
];
/** A state whose step `step` is cleared for promotion (a dry run ignores the approval answer). */
function cleared(state: TrainState, step: number, minute = 0): TrainState {
  let current = state;
  for (const [event, now] of clearing(step, minute))
    current = decideTrain(current, event, now).state;
  return current;
}

/** Feeds events in order; returns the last decision and every action and event on the way. */
function run(state: TrainState, events: readonly [TrainEvent, string][]) {
  let current = state;
  const actions: TrainAction[] = [];
  const published: TrainDecision["events"][number][] = [];
  let last: TrainDecision | undefined;
  for (const [event, now] of events) {
    last = decideTrain(current, event, now);
    current = last.state;
    actions.push(...last.actions);
    published.push(...last.events);
  }
  return { state: current, actions, published, last };
}

/** Promote, guard and check one step, all healthy unless a report is given. */
function stepThrough(state: TrainState, step: number, start: number, reports?: StepReport[]) {
  const guard = state.plan.steps[step]?.guardWindowMs ?? 0;
  const end = start + guard / 60_000;
  return run(state, [
    ...clearing(step, start),
    [{ type: "step-promoted", step, commit: `c${step}` }, at(start)],
    [{ type: "guard-elapsed", step }, at(end)],
    [{ type: "checks-reported", step, reports: reports ?? [report(state, step)] }, at(end)],
  ]);
}

describe("planTrain", () => {
  it("plans each step with its strategy, change at the rollback path, guard, checks and rule", () => {
    const p = plan();
    expect(p.train).toBe("train-42");
    expect(p.steps.map((s) => [s.service, s.strategy.kind, s.summary, s.guardWindowMs])).toEqual([
      [
        "checkout",
        "canary",
        "image registry.example.com/shop/checkout:v1.6.0 → envs/prod/checkout",
        600_000,
      ],
      ["cart", "blue_green", "patch replicas → envs/prod/cart", 300_000],
      ["search", "rolling", "image registry.example.com/shop/search:v2 → envs/prod/search", 60_000],
      ["email", "rolling", "image registry.example.com/shop/email:v9 → envs/prod/email", 600_000],
    ]);
    expect(p.steps[0]?.strategy).toEqual({
      kind: "canary",
      stages: [
        { weight: 10, bakeTime: "10m" },
        { weight: 50, bakeTime: "10m" },
        { weight: 100, bakeTime: "10m" },
      ],
      bakeTimeMs: 600_000,
      promoteHook: null,
      rollbackHook: null,
    });
    expect(p.steps[1]?.strategy).toEqual({ kind: "blue_green", cutoverHook: null });
    expect(p.steps[2]?.strategy).toEqual({ kind: "rolling", maxUnavailable: 2 });
    expect(p.steps[1]?.change).toEqual({
      kind: "patch",
      patch: { replicas: 3 },
      path: "envs/prod/cart",
    });
    expect(p.steps[0]?.regression).toEqual({ maxErrorRatioIncrease: 2, minBaselineRatio: 0.001 });
    expect(p.steps[1]?.regression).toBeNull();
    expect(p.finalChecks).toHaveLength(1);
    expect(p.followUps).toEqual([
      { after: "1h", afterMs: 3_600_000 },
      { after: "4h", afterMs: 14_400_000 },
      { after: "12h", afterMs: 43_200_000 },
    ]);
  });

  it("names every step that cannot be planned", () => {
    const doc = trainDoc([
      { service: "nope", image: "x:1" },
      { service: "checkout", image: "x:2" },
      { service: "bare", image: "x:3" },
    ]);
    const bare = ServiceDocument.parse({
      apiVersion: "safedeploy.dev/v1",
      kind: "Service",
      metadata: { name: "bare", owner: "team" },
      spec: { slos: [] },
    });
    const loaded = services.map((s) => ({ name: s.metadata.name, spec: s.spec }));
    expect(planTrain(doc, [...loaded, bare])).toEqual({
      ok: false,
      errors: [
        {
          step: 0,
          service: "nope",
          code: "unknown-service",
          message: 'step 1: service "nope" is not in the catalog',
        },
        {
          step: 2,
          service: "bare",
          code: "no-rollback-path",
          message: 'step 3: service "bare" has no rollback.path to change',
        },
      ],
    });
  });
});

describe("the train state machine", () => {
  const started = () => startTrain({ trainId: "t1", plan: plan(), dryRun: false, now: t0 });
  /** Started, step 1 cleared by its gate and approval: promoting. */
  const ready = () => cleared(started().state, 0);

  it("starts by asking step 1's gate and announcing the train; promotes once it passed and was approved", () => {
    const decision = started();
    expect(decision.state.steps.map((s) => s.phase)).toEqual([
      "gating",
      "pending",
      "pending",
      "pending",
    ]);
    expect(decision.actions).toEqual([{ kind: "ask-gate", step: 0, service: "checkout" }]);
    expect(decision.events.map((e) => [e.type, e.id])).toEqual([
      ["governance.train-started", "governance.train-started:t1"],
    ]);
    const promoted = run(decision.state, clearing(0, 0));
    expect(promoted.state.steps[0]).toMatchObject({ phase: "promoting", promotingAt: at(0) });
    expect(promoted.actions.map((a) => a.kind)).toEqual(["request-approval", "promote"]);
    expect(promoted.published.map((e) => e.id)).toEqual(["governance.train-step:t1:0:promoting"]);
    for (const event of decision.events)
      expect(() => EVENT_DATA[event.type].parse(event.data)).not.toThrow();
  });

  it("all healthy: promotes every step in order with its guard window, then final checks, then follow-ups", () => {
    let { state } = started();
    let minute = 0;
    const promotions: number[] = [];
    for (let step = 0; step < 4; step++) {
      const result = stepThrough(state, step, minute);
      state = result.state;
      minute += (state.plan.steps[step]?.guardWindowMs ?? 0) / 60_000;
      promotions.push(...result.actions.filter((a) => a.kind === "promote").map((a) => a.step));
      const wait = result.actions.find((a) => a.kind === "wait");
      expect(wait).toMatchObject({ step, until: at(minute) });
    }
    expect(promotions).toEqual([0, 1, 2, 3]);
    const finalAction = run(state, []).state.final;
    expect(finalAction.phase).toBe("checking");
    const done = decideTrain(
      state,
      { type: "final-checks-reported", checks: [okCheck()], reports: [] },
      at(minute),
    );
    expect(done.state.status).toBe("completed");
    expect(done.state.followUps.map((f) => f.dueAt)).toEqual([
      at(minute + 60),
      at(minute + 240),
      at(minute + 720),
    ]);
    expect(done.actions).toEqual([
      { kind: "schedule-follow-up", index: 0, dueAt: at(minute + 60) },
      { kind: "schedule-follow-up", index: 1, dueAt: at(minute + 240) },
      { kind: "schedule-follow-up", index: 2, dueAt: at(minute + 720) },
    ]);
    expect(done.events.map((e) => e.type)).toEqual([
      "governance.train-finished",
      "governance.follow-up",
      "governance.follow-up",
      "governance.follow-up",
    ]);
    for (const event of done.events)
      expect(() => EVENT_DATA[event.type].parse(event.data)).not.toThrow();
    const manifest = releaseManifest(done.state);
    expect(manifest.promoted.map((e) => [e.service, e.commit, e.promotedAt])).toEqual([
      ["checkout", "c0", at(0)],
      ["cart", "c1", at(10)],
      ["search", "c2", at(15)],
      ["email", "c3", at(16)],
    ]);
    expect(manifest).toMatchObject({
      status: "completed",
      train: "train-42",
      finishedAt: at(minute),
    });
  });

  it("a guard is not over before its window: guard-elapsed too early changes nothing", () => {
    const { state } = run(ready(), [[{ type: "step-promoted", step: 0, commit: "c0" }, at(0)]]);
    const early = decideTrain(state, { type: "guard-elapsed", step: 0 }, at(9));
    expect(early).toMatchObject({
      changed: false,
      ignored: expect.stringContaining("guards until") as string,
    });
    const onTime = decideTrain(state, { type: "guard-elapsed", step: 0 }, at(10));
    expect(onTime.actions).toEqual([
      {
        kind: "run-checks",
        step: 0,
        targets: [
          {
            step: 0,
            service: "checkout",
            checks: state.plan.steps[0]?.checks,
            regression: { maxErrorRatioIncrease: 2, minBaselineRatio: 0.001 },
            deployedAt: at(0),
          },
        ],
      },
    ]);
  });

  it("service 3 fails its content check: halts after step 3, revert of step 3 only", () => {
    let { state } = started();
    state = stepThrough(state, 0, 0).state;
    state = stepThrough(state, 1, 10).state;
    const failing = stepThrough(state, 2, 15, [
      report(state, 0),
      report(state, 1),
      report(state, 2, badCheck()),
    ]);
    expect(failing.state.status).toBe("halted");
    expect(failing.state.steps.map((s) => s.phase)).toEqual([
      "checked",
      "checked",
      "checked",
      "pending",
    ]);
    expect(failing.last?.actions.filter((a) => a.kind === "promote")).toEqual([]);
    expect(failing.last?.actions).toEqual([
      {
        kind: "fail-guard",
        step: 2,
        service: "search",
        reason: "step 3 guard failed: step 3 (search) is failing",
        evidence: ['step 3 search: http://x.internal/ (fatal): $.status is "down"'],
        at: at(16),
      },
      expect.objectContaining({
        kind: "propose-revert",
        step: 2,
        service: "search",
        path: "envs/prod/search",
        commit: "c2",
      }),
    ]);
    expect(failing.last?.events.map((e) => e.type)).toEqual([
      "governance.train-step",
      "governance.train-finished",
    ]);
    expect(failing.last?.events[1]?.data).toMatchObject({ outcome: "halted" });
    expect(releaseManifest(failing.state).promoted.map((e) => e.service)).toEqual([
      "checkout",
      "cart",
      "search",
    ]);
  });

  it("two services failing at once: manual triage, nothing reverted", () => {
    let { state } = started();
    state = stepThrough(state, 0, 0).state;
    state = stepThrough(state, 1, 10).state;
    const failing = stepThrough(state, 2, 15, [
      report(state, 0),
      report(state, 1, badCheck()),
      report(state, 2, badCheck()),
    ]);
    expect(failing.state.status).toBe("needs-triage");
    expect(failing.last?.actions).toEqual([
      expect.objectContaining({ kind: "fail-guard", step: 1, service: "cart" }),
      expect.objectContaining({ kind: "fail-guard", step: 2, service: "search" }),
      expect.objectContaining({
        kind: "manual-triage",
        evidence: expect.arrayContaining([
          expect.stringContaining("2 services failing at once"),
        ]) as string[],
      }),
    ]);
    expect(failing.actions.some((a) => a.kind === "propose-revert")).toBe(false);
  });

  it("warnings halt only with haltOn warning", () => {
    const lenient = startTrain({ trainId: "t1", plan: plan(), dryRun: false, now: t0 }).state;
    const strict = startTrain({
      trainId: "t1",
      plan: plan(),
      dryRun: false,
      haltOn: "warning",
      now: t0,
    }).state;
    const warn = (state: TrainState) =>
      stepThrough(state, 0, 0, [report(state, 0, badCheck("warning"))]);
    expect(warn(lenient).state.steps[1]?.phase).toBe("gating");
    expect(warn(lenient).state.steps[0]?.outcome).toBe("warning");
    expect(warn(strict).state.status).toBe("halted");
  });

  it("a regression or a blocked gate fails the step", () => {
    const { state } = started();
    const regressed: StepReport = {
      ...report(state, 0),
      regression: {
        regressed: true,
        findings: [
          {
            kind: "new-error-series",
            labels: { code: "502" },
            errors: 4,
            message: "new error series",
          },
        ],
        before: { errors: 0, total: 100, ratio: 0 },
        after: { errors: 4, total: 100, ratio: 0.04 },
      },
    };
    expect(stepThrough(state, 0, 0, [regressed]).state.status).toBe("halted");
    const blocked: StepReport = { ...report(state, 0), gate: { allowed: false, reasons: [] } };
    const halted = stepThrough(state, 0, 0, [blocked]);
    expect(halted.state.attribution).toMatchObject({
      kind: "step",
      evidence: ["step 1 checkout: gate blocks: no reason given"],
    });
  });

  it("a failed promotion halts without a revert", () => {
    const failed = decideTrain(
      ready(),
      { type: "step-failed", step: 0, reason: "push rejected" },
      at(1),
    );
    expect(failed.state).toMatchObject({
      status: "halted",
      reason: expect.stringContaining("push rejected") as string,
    });
    expect(failed.actions).toEqual([]);
    expect(failed.events[0]?.data).toMatchObject({ outcome: "halted" });
  });

  it("ignores events that do not fit: wrong phase, missing report, after the end", () => {
    const state = ready();
    expect(decideTrain(state, { type: "guard-elapsed", step: 0 }, at(0)).changed).toBe(false);
    expect(
      decideTrain(state, { type: "checks-reported", step: 0, reports: [] }, at(0)).changed,
    ).toBe(false);
    expect(decideTrain(state, { type: "step-promoted", step: 7, commit: "x" }, at(0)).changed).toBe(
      false,
    );
    expect(
      decideTrain(state, { type: "final-checks-reported", checks: [], reports: [] }, at(0)).changed,
    ).toBe(false);
    expect(decideTrain(state, { type: "follow-up-due", index: 0 }, at(0)).changed).toBe(false);
    expect(
      decideTrain(state, { type: "follow-up-reported", index: 0, checks: [], reports: [] }, at(0))
        .changed,
    ).toBe(false);
    const guarding = decideTrain(
      state,
      { type: "step-promoted", step: 0, commit: "c0" },
      at(0),
    ).state;
    expect(
      decideTrain(guarding, { type: "step-failed", step: 0, reason: "x" }, at(0)).changed,
    ).toBe(false);
    const checking = decideTrain(guarding, { type: "guard-elapsed", step: 0 }, at(10)).state;
    expect(
      decideTrain(
        checking,
        { type: "checks-reported", step: 0, reports: [report(state, 1)] },
        at(10),
      ).ignored,
    ).toBe("no report for step 0");
  });

  it("without final checks the train completes after the last step", () => {
    const doc = trainDoc([{ service: "email", image: "x:1", guardWindow: "1m" }], {
      followUps: ["30s"],
    });
    const { state } = startTrain({ trainId: "t2", plan: plan(doc), dryRun: true, now: t0 });
    const done = stepThrough(state, 0, 0);
    expect(done.state).toMatchObject({
      status: "completed",
      final: { phase: "checked" },
      dryRun: true,
    });
    expect(done.last?.actions).toEqual([
      { kind: "schedule-follow-up", index: 0, dueAt: "2026-11-24T09:01:30.000Z" },
    ]);
  });

  describe("final checks and follow-ups", () => {
    function finished() {
      let { state } = started();
      let minute = 0;
      for (let step = 0; step < 4; step++) {
        state = stepThrough(state, step, minute).state;
        minute += (state.plan.steps[step]?.guardWindowMs ?? 0) / 60_000;
      }
      return { state, minute };
    }

    it("a failing stack check with no per-service signal needs triage", () => {
      const { state, minute } = finished();
      const result = decideTrain(
        state,
        { type: "final-checks-reported", checks: [badCheck()], reports: [report(state, 0)] },
        at(minute),
      );
      expect(result.state.status).toBe("needs-triage");
      expect(result.actions).toEqual([
        expect.objectContaining({
          kind: "manual-triage",
          evidence: expect.arrayContaining([
            "the stack check failed with no per-service signal",
          ]) as string[],
        }),
      ]);
      expect(result.state.followUps).toEqual([]);
    });

    it("a failing final check with one failing service reverts that service's step", () => {
      const { state, minute } = finished();
      const result = decideTrain(
        state,
        {
          type: "final-checks-reported",
          checks: [badCheck()],
          reports: [report(state, 1, badCheck())],
        },
        at(minute),
      );
      expect(result.state.status).toBe("halted");
      expect(result.actions).toEqual([
        expect.objectContaining({ kind: "fail-guard", step: 1, service: "cart" }),
        expect.objectContaining({ kind: "propose-revert", step: 1, service: "cart" }),
      ]);
    });

    it("each follow-up runs once when due and attributes a failure to the step that introduced it", () => {
      const { state, minute } = finished();
      const done = decideTrain(
        state,
        { type: "final-checks-reported", checks: [okCheck()], reports: [] },
        at(minute),
      );
      const early = decideTrain(done.state, { type: "follow-up-due", index: 0 }, at(minute + 59));
      expect(early.changed).toBe(false);
      const due = decideTrain(done.state, { type: "follow-up-due", index: 0 }, at(minute + 60));
      expect(due.actions).toEqual([
        expect.objectContaining({
          kind: "run-follow-up",
          index: 0,
          checks: state.plan.finalChecks,
        }),
      ]);
      const run = due.actions[0];
      expect(
        run?.kind === "run-follow-up" ? run.targets.map((t) => [t.service, t.deployedAt]) : [],
      ).toEqual([
        ["checkout", at(0)],
        ["cart", at(10)],
        ["search", at(15)],
        ["email", at(16)],
      ]);
      expect(
        decideTrain(due.state, { type: "follow-up-due", index: 0 }, at(minute + 61)).changed,
      ).toBe(false);
      const failed = decideTrain(
        due.state,
        {
          type: "follow-up-reported",
          index: 0,
          checks: [badCheck()],
          reports: [report(state, 0), report(state, 2, badCheck())],
        },
        at(minute + 61),
      );
      expect(failed.state.followUps[0]).toMatchObject({
        phase: "failed",
        attribution: { kind: "step", step: 2 },
      });
      expect(failed.actions).toEqual([
        {
          kind: "fail-guard",
          step: 2,
          service: "search",
          reason: "follow-up +1h failed: step 3 (search) is failing",
          evidence: [
            'step 3 search: http://x.internal/ (fatal): $.status is "down"',
            'stack: http://x.internal/ (fatal): $.status is "down"',
          ],
          at: at(minute + 61),
        },
        expect.objectContaining({ kind: "propose-revert", step: 2, path: "envs/prod/search" }),
      ]);
      expect(failed.events).toHaveLength(1);
      expect(failed.events[0]).toMatchObject({
        id: "governance.follow-up:t1:0:failed",
        data: { phase: "failed", attributedStep: 2 },
      });
      expect(() => EVENT_DATA["governance.follow-up"].parse(failed.events[0]?.data)).not.toThrow();
      expect(releaseManifest(failed.state).followUps[0]).toMatchObject({
        phase: "failed",
        attributedStep: 2,
      });
      const twice = decideTrain(
        failed.state,
        { type: "follow-up-reported", index: 0, checks: [], reports: [] },
        at(minute + 62),
      );
      expect(twice.changed).toBe(false);

      const second = decideTrain(
        failed.state,
        { type: "follow-up-due", index: 1 },
        at(minute + 240),
      ).state;
      const passed = decideTrain(
        second,
        { type: "follow-up-reported", index: 1, checks: [okCheck()], reports: [report(state, 2)] },
        at(minute + 240),
      );
      expect(passed.state.followUps[1]).toMatchObject({
        phase: "passed",
        attribution: { kind: "none" },
      });
      expect(passed.actions).toEqual([]);
      const ambiguous = decideTrain(
        decideTrain(passed.state, { type: "follow-up-due", index: 2 }, at(minute + 720)).state,
        { type: "follow-up-reported", index: 2, checks: [badCheck()], reports: [] },
        at(minute + 720),
      );
      expect(ambiguous.actions.map((a) => a.kind)).toEqual(["manual-triage"]);
      expect(ambiguous.events[0]?.data).toMatchObject({ attributedStep: null });
    });
  });
});

describe("attributeFailure", () => {
  const r = (step: number, service: string, failing: boolean): StepReport => ({
    step,
    service,
    checks: [failing ? badCheck() : okCheck()],
    regression: null,
  });

  it("names the one failing service's latest step", () => {
    expect(
      attributeFailure({
        reports: [r(0, "a", true), r(1, "b", false), r(2, "a", true)],
        haltOn: "fatal",
      }),
    ).toMatchObject({ kind: "step", step: 2, service: "a" });
    expect(attributeFailure({ reports: [r(0, "a", false)], haltOn: "fatal" })).toEqual({
      kind: "none",
    });
  });

  it("never names a step whose service was healthy (property)", () => {
    const reports = fc.array(
      fc.record({
        step: fc.nat(5),
        service: fc.constantFrom("a", "b", "c", "d"),
        failing: fc.boolean(),
      }),
      { maxLength: 8 },
    );
    fc.assert(
      fc.property(reports, fc.boolean(), (items, stackFails) => {
        const input = items.map((item) => r(item.step, item.service, item.failing));
        const attribution = attributeFailure({
          reports: input,
          stackChecks: [stackFails ? badCheck() : okCheck()],
          haltOn: "fatal",
        });
        const failingServices = new Set(items.filter((i) => i.failing).map((i) => i.service));
        if (attribution.kind === "step") {
          expect(failingServices).toEqual(new Set([attribution.service]));
          expect(items.some((i) => i.failing && i.step === attribution.step)).toBe(true);
        } else if (attribution.kind === "none") {
          expect(failingServices.size).toBe(0);
          expect(stackFails).toBe(false);
        } else {
          expect(failingServices.size !== 1).toBe(true);
        }
      }),
    );
  });
});

describe("state machine properties", () => {
  const planned = plan();
  const anyEvent: fc.Arbitrary<TrainEvent> = fc.oneof(
    fc.record({
      type: fc.constant("step-promoted" as const),
      step: fc.nat(4),
      commit: fc.constantFrom("a", "b"),
    }),
    fc.record({
      type: fc.constant("step-failed" as const),
      step: fc.nat(4),
      reason: fc.constant("boom"),
    }),
    fc.record({ type: fc.constant("guard-elapsed" as const), step: fc.nat(4) }),
    fc
      .record({
        step: fc.nat(3),
        bad: fc.array(fc.constantFrom("ok", "warning", "fatal"), { minLength: 4, maxLength: 4 }),
      })
      .map(({ step, bad }) => ({
        type: "checks-reported" as const,
        step,
        reports: Array.from({ length: step + 1 }, (_, i) => ({
          step: i,
          service: planned.steps[i]?.service ?? "?",
          checks: [bad[i] === "ok" ? okCheck() : badCheck(bad[i])],
          regression: null,
        })),
      })),
    fc.boolean().map((ok) => ({
      type: "final-checks-reported" as const,
      checks: [ok ? okCheck() : badCheck()],
      reports: [],
    })),
    fc.record({ type: fc.constant("follow-up-due" as const), index: fc.nat(3) }),
    fc.record({
      type: fc.constant("follow-up-reported" as const),
      index: fc.nat(3),
      checks: fc.constant([okCheck()]),
      reports: fc.constant([]),
    }),
    fc.record({
      type: fc.constant("gate-answered" as const),
      step: fc.nat(4),
      verdict: fc.constantFrom("pass" as const, "block" as const, "unknown" as const),
      reasons: fc.constant([]),
      evidenceAge: fc.constant(null),
    }),
    fc.record({
      type: fc.constant("approval-answered" as const),
      step: fc.nat(4),
      state: fc.constantFrom("approved" as const, "pending" as const, "rejected" as const),
      required: fc.constantFrom(1, 2, null),
      approvals: fc.constant([{ by: "alice", at: t0 }]),
    }),
    fc.record({
      type: fc.constant("promotion-approved" as const),
      step: fc.nat(4),
      by: fc.constantFrom("alice", "bob", "carol"),
      at: fc.constant(t0),
      required: fc.constant(2),
      approved: fc.boolean(),
    }),
    fc.record({
      type: fc.constant("promotion-rejected" as const),
      step: fc.nat(4),
      by: fc.constant("bob"),
      reason: fc.constant("not now"),
    }),
  );
  const script = fc.array(fc.tuple(anyEvent, fc.nat(2000)), { maxLength: 40 });

  it("never promotes step n+1 before step n was checked without a halting outcome", () => {
    fc.assert(
      fc.property(script, (events) => {
        let state = startTrain({ trainId: "p", plan: planned, dryRun: false, now: t0 }).state;
        for (const [event, minute] of events) {
          const decision = decideTrain(state, event, at(minute));
          for (const action of decision.actions) {
            if (action.kind !== "promote" || action.step === 0) continue;
            const previous = decision.state.steps[action.step - 1];
            expect(previous?.phase).toBe("checked");
            expect(previous?.outcome === "fatal").toBe(false);
          }
          state = decision.state;
          state.steps.forEach((step, i) => {
            if (step.phase !== "pending" && i > 0)
              expect(state.steps[i - 1]?.phase).toBe("checked");
          });
        }
      }),
    );
  });

  it("applying an event twice is a no-op the second time", () => {
    fc.assert(
      fc.property(script, anyEvent, fc.nat(2000), (events, repeated, minute) => {
        let state = startTrain({ trainId: "p", plan: planned, dryRun: false, now: t0 }).state;
        for (const [event, m] of events) state = decideTrain(state, event, at(m)).state;
        const once = decideTrain(state, repeated, at(minute));
        const twice = decideTrain(once.state, repeated, at(minute));
        expect(twice.changed).toBe(false);
        expect(twice.state).toEqual(once.state);
        expect(twice.events).toEqual([]);
        expect(twice.actions).toEqual([]);
      }),
    );
  });

  it("is deterministic: the same events at the same times give the same decisions", () => {
    fc.assert(
      fc.property(script, (events) => {
        const replay = () => {
          let state = startTrain({ trainId: "p", plan: planned, dryRun: false, now: t0 }).state;
          const out: TrainDecision[] = [];
          for (const [event, m] of events) {
            const decision = decideTrain(state, event, at(m));
            out.push(decision);
            state = decision.state;
          }
          return out;
        };
        expect(replay()).toEqual(replay());
      }),
    );
  });
});

describe("governance before every promotion (DESIGN.md invariant 9)", () => {
  /** The four-step plan, every service's policy requiring `required` distinct approvers. */
  const governed = (required: number) => {
    const result = planTrain(
      fourSteps,
      services.map((s) => ({ ...s, policy: { approvals: { required } } })),
    );
    if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
    return result.plan;
  };
  const freeze: GateReason = {
    code: "freeze-active",
    message: "manual freeze until 2026-11-25T00:00:00.000Z: launch week",
    value: "freeze:cart:manual:x",
    threshold: "2026-11-25T00:00:00.000Z",
  };
  const gate = (
    step: number,
    verdict: GateVerdictKind,
    reasons: GateReason[] = [],
  ): TrainEvent => ({
    type: "gate-answered",
    step,
    verdict,
    reasons,
    evidenceAge: 30,
  });
  const pending = (step: number, required = 2): TrainEvent => ({
    type: "approval-answered",
    step,
    state: "pending",
    required,
    approvals: [{ by: "alice", at: t0 }],
  });
  /** A train whose step 1 passed; step 2 (cart) asks its gate. */
  function atStep2(options: { dryRun?: boolean; required?: number } = {}) {
    const start = startTrain({
      trainId: "TRN-G",
      plan: governed(options.required ?? 1),
      dryRun: options.dryRun ?? false,
      now: t0,
    });
    const first = stepThrough(start.state, 0, 0);
    expect(first.state.steps[1]?.phase).toBe("gating");
    expect(first.last?.actions).toEqual([{ kind: "ask-gate", step: 1, service: "cart" }]);
    return first.state;
  }

  it("plans the approvals each step needs from the service's effective policy", () => {
    expect(governed(2).steps.map((s) => s.approvals)).toEqual([2, 2, 2, 2]);
    expect(plan().steps.map((s) => s.approvals)).toEqual([null, null, null, null]);
  });

  it("a blocked gate blocks the step: nothing promoted, the train halts naming the gate's reasons", () => {
    const state = atStep2();
    const blocked = decideTrain(state, gate(1, "block", [freeze]), at(10));
    expect(blocked.state.status).toBe("halted");
    expect(blocked.state.reason).toBe(
      "step 2 (cart) blocked by its gate: freeze-active: manual freeze until 2026-11-25T00:00:00.000Z: launch week",
    );
    expect(blocked.state.steps.map((s) => s.phase)).toEqual([
      "checked",
      "blocked",
      "pending",
      "pending",
    ]);
    expect(blocked.state.steps[1]?.gate).toEqual({
      verdict: "block",
      reasons: [freeze],
      at: at(10),
      evidenceAge: 30,
    });
    expect(blocked.state.attribution).toEqual({ kind: "none" });
    // Nothing was pushed: no promotion, no revert, no failed guard.
    expect(blocked.actions).toEqual([]);
    expect(blocked.events.map((e) => e.id)).toEqual([
      "governance.train-step:TRN-G:1:blocked",
      "governance.train-finished:TRN-G",
    ]);
    expect(blocked.events[0]?.data).toMatchObject({
      phase: "blocked",
      details: { gate: { verdict: "block", reasons: [freeze] } },
    });
    for (const event of blocked.events)
      expect(() => EVENT_DATA[event.type].parse(event.data)).not.toThrow();
    expect(releaseManifest(blocked.state).promoted.map((e) => e.service)).toEqual(["checkout"]);
    expect(decideTrain(blocked.state, gate(1, "pass"), at(11)).changed).toBe(false);
  });

  it("a gate that cannot see (unknown) blocks too, and so it does in a dry run", () => {
    const stale: GateReason = {
      code: "stale-evidence",
      message: "SLO availability: the newest evidence is 400 s old > staleAfter 90s",
      value: 400,
      threshold: 90,
    };
    for (const dryRun of [false, true]) {
      const blocked = decideTrain(atStep2({ dryRun }), gate(1, "unknown", [stale]), at(10));
      expect(blocked.state).toMatchObject({
        status: "halted",
        reason: `step 2 (cart) blocked by its gate (unknown: it cannot see): stale-evidence: ${stale.message}`,
      });
      expect(blocked.state.steps[1]?.phase).toBe("blocked");
      expect(blocked.actions).toEqual([]);
    }
  });

  it("a pass asks for the step's promotion proposal; approved at once, it promotes with its gate and approval recorded", () => {
    const state = atStep2();
    const passed = decideTrain(state, gate(1, "pass"), at(10));
    expect(passed.state.steps[1]?.phase).toBe("proposing");
    expect(passed.events).toEqual([]);
    expect(passed.actions).toEqual([
      {
        kind: "request-approval",
        step: 1,
        service: "cart",
        proposalId: "TRN-G-s2",
        summary: "release train train-42 (TRN-G), step 2: patch replicas → envs/prod/cart",
        plan: { action: "patch-manifest", path: "envs/prod/cart", patch: { replicas: 3 } },
        at: at(10),
      },
    ]);
    const promoted = decideTrain(passed.state, approvedAtOnce(1), at(10));
    expect(promoted.state.steps[1]).toMatchObject({
      phase: "promoting",
      promotingAt: at(10),
      approval: { proposalId: "TRN-G-s2", state: "approved", required: 1 },
    });
    expect(promoted.actions).toEqual([
      expect.objectContaining({ kind: "promote", step: 1, service: "cart" }),
    ]);
    expect(promoted.events[0]?.data).toMatchObject({
      phase: "promoting",
      details: {
        gate: { verdict: "pass", reasons: [] },
        approval: { proposalId: "TRN-G-s2", state: "approved", required: 1, approvals: ["alice"] },
      },
    });
  });

  it("a service requiring two approvers waits in awaiting-approval until the second, then asks its gate again before promoting", () => {
    const state = atStep2({ required: 2 });
    const asked = run(state, [
      [gate(1, "pass"), at(10)],
      [pending(1), at(10)],
    ]);
    expect(asked.state.steps[1]).toMatchObject({
      phase: "awaiting-approval",
      approval: {
        proposalId: "TRN-G-s2",
        state: "pending",
        required: 2,
        approvals: [{ by: "alice", at: t0 }],
      },
    });
    expect(asked.actions.map((a) => a.kind)).toEqual(["request-approval"]);
    expect(asked.published.map((e) => e.id)).toEqual([
      "governance.train-step:TRN-G:1:awaiting-approval",
    ]);
    expect(asked.published[0]?.data).toMatchObject({
      phase: "awaiting-approval",
      details: { approval: { required: 2, approvals: ["alice"] } },
    });
    // Nothing moves while it waits, however long.
    for (const event of [
      { type: "guard-elapsed", step: 1 },
      { type: "step-promoted", step: 1, commit: "x" },
      gate(1, "pass"),
      approvedAtOnce(1),
    ] as TrainEvent[]) {
      expect(decideTrain(asked.state, event, at(600)).changed).toBe(false);
    }
    const approved = decideTrain(
      asked.state,
      {
        type: "promotion-approved",
        step: 1,
        by: "bob",
        at: at(700),
        required: 2,
        approved: true,
      },
      at(700),
    );
    expect(approved.state.steps[1]).toMatchObject({
      phase: "gating",
      approval: { state: "approved", approvals: [{ by: "alice" }, { by: "bob", at: at(700) }] },
    });
    expect(approved.actions).toEqual([{ kind: "ask-gate", step: 1, service: "cart" }]);
    const promoted = decideTrain(approved.state, gate(1, "pass"), at(701));
    expect(promoted.actions.map((a) => a.kind)).toEqual(["promote"]);
    expect(promoted.state.steps[1]).toMatchObject({ phase: "promoting", promotingAt: at(701) });
    // The gate may have closed while the approvers took their time: then nothing is pushed.
    const closed = decideTrain(approved.state, gate(1, "block", [freeze]), at(701));
    expect(closed.state.steps[1]?.phase).toBe("blocked");
    expect(closed.state.status).toBe("halted");
    expect(closed.actions).toEqual([]);
  });

  it("counts approvals by distinct people until the proposal says it is approved", () => {
    const state = run(atStep2({ required: 3 }), [
      [gate(1, "pass"), at(10)],
      [pending(1, 3), at(10)],
    ]).state;
    const approve = (by: string, approved: boolean): TrainEvent => ({
      type: "promotion-approved",
      step: 1,
      by,
      at: at(20),
      required: 3,
      approved,
    });
    const bob = decideTrain(state, approve("bob", false), at(20));
    expect(bob.state.steps[1]).toMatchObject({ phase: "awaiting-approval" });
    expect(bob.state.steps[1]?.approval?.approvals.map((a) => a.by)).toEqual(["alice", "bob"]);
    expect(bob.actions).toEqual([]);
    expect(decideTrain(bob.state, approve("bob", false), at(21)).changed).toBe(false);
    expect(decideTrain(bob.state, approve("alice", false), at(21)).changed).toBe(false);
    const carol = decideTrain(bob.state, approve("carol", true), at(22));
    expect(carol.state.steps[1]?.phase).toBe("gating");
  });

  it("a rejection halts the train with nothing promoted: while awaiting approval, or as the proposal's answer", () => {
    const waiting = run(atStep2({ required: 2 }), [
      [gate(1, "pass"), at(10)],
      [pending(1), at(10)],
    ]).state;
    const rejected = decideTrain(
      waiting,
      { type: "promotion-rejected", step: 1, by: "bob", reason: "not during the sale" },
      at(30),
    );
    expect(rejected.state).toMatchObject({
      status: "halted",
      reason: "step 2 (cart) promotion rejected by bob: not during the sale",
      attribution: { kind: "none" },
    });
    expect(rejected.state.steps[1]).toMatchObject({
      phase: "rejected",
      approval: { state: "rejected", rejection: { by: "bob", reason: "not during the sale" } },
    });
    expect(rejected.actions).toEqual([]);
    expect(rejected.events.map((e) => e.id)).toEqual([
      "governance.train-step:TRN-G:1:rejected",
      "governance.train-finished:TRN-G",
    ]);
    for (const event of rejected.events)
      expect(() => EVENT_DATA[event.type].parse(event.data)).not.toThrow();
    expect(
      decideTrain(
        rejected.state,
        {
          type: "promotion-approved",
          step: 1,
          by: "carol",
          at: at(31),
          required: 2,
          approved: true,
        },
        at(31),
      ).changed,
    ).toBe(false);

    const proposing = decideTrain(atStep2(), gate(1, "pass"), at(10)).state;
    const answered = decideTrain(
      proposing,
      {
        type: "approval-answered",
        step: 1,
        state: "rejected",
        required: 1,
        approvals: [],
        rejection: { by: "bob", reason: "no" },
      },
      at(11),
    );
    expect(answered.state.reason).toBe("step 2 (cart) promotion rejected by bob: no");
    expect(answered.actions).toEqual([]);
    const superseded = decideTrain(
      proposing,
      { type: "approval-answered", step: 1, state: "superseded", required: 1, approvals: [] },
      at(11),
    );
    expect(superseded.state).toMatchObject({
      status: "halted",
      reason: "step 2 (cart) promotion can no longer be approved: proposal TRN-G-s2 is superseded",
    });
  });

  it("a dry run asks the gate, creates no proposal, records the approvals it would need and goes on", () => {
    const state = atStep2({ dryRun: true, required: 2 });
    const passed = decideTrain(state, gate(1, "pass"), at(10));
    expect(passed.actions.map((a) => a.kind)).toEqual(["promote"]);
    expect(passed.state.steps[1]).toMatchObject({
      phase: "promoting",
      approval: {
        proposalId: "TRN-G-s2",
        state: "pending",
        required: 2,
        approvals: [],
        dryRun: true,
      },
    });
  });

  /** One event that fits the train where it is, its outcome drawn from `pick`. */
  function nextEvent(state: TrainState, pick: () => number): TrainEvent | null {
    const choose = <T>(options: readonly T[]): T => options[pick() % options.length] as T;
    const outcome = () => (pick() % 12 < 11 ? "ok" : choose(["warning", "fatal"] as const));
    const reportOf = (index: number): StepReport => {
      const kind = outcome();
      return {
        step: index,
        service: state.plan.steps[index]?.service ?? "?",
        checks: [kind === "ok" ? okCheck() : badCheck(kind)],
        regression:
          pick() % 12 === 0
            ? {
                regressed: true,
                findings: [
                  { kind: "new-error-series", labels: {}, errors: 3, message: "new series" },
                ],
                before: { errors: 0, total: 100, ratio: 0 },
                after: { errors: 3, total: 100, ratio: 0.03 },
              }
            : null,
      };
    };
    if (state.status !== "running") {
      const followUp = state.followUps.find(
        (f) => f.phase === "scheduled" || f.phase === "running",
      );
      if (followUp === undefined) return null;
      if (followUp.phase === "scheduled") return { type: "follow-up-due", index: followUp.index };
      return {
        type: "follow-up-reported",
        index: followUp.index,
        checks: [okCheck()],
        reports: state.steps.map((s) => reportOf(s.index)),
      };
    }
    if (state.final.phase === "checking") {
      return {
        type: "final-checks-reported",
        checks: [pick() % 4 === 0 ? badCheck() : okCheck()],
        reports: state.steps.map((s) => reportOf(s.index)),
      };
    }
    const step = state.steps.find((s) => s.phase !== "pending" && s.phase !== "checked");
    if (step === undefined) return null;
    const i = step.index;
    switch (step.phase) {
      case "gating":
        return gate(i, pick() % 12 < 11 ? "pass" : choose(["block", "unknown"] as const));
      case "proposing":
        return {
          type: "approval-answered",
          step: i,
          state: pick() % 16 === 0 ? "rejected" : choose(["approved", "pending"] as const),
          required: 2,
          approvals: [{ by: "alice", at: t0 }],
        };
      case "awaiting-approval":
        if (pick() % 16 === 0)
          return { type: "promotion-rejected", step: i, by: "bob", reason: "no" };
        return choose([
          {
            type: "promotion-approved",
            step: i,
            by: choose(["bob", "carol", "alice"]),
            at: t0,
            required: 2,
            approved: choose([true, true, false]),
          },
          {
            type: "promotion-approved",
            step: i,
            by: "bob",
            at: t0,
            required: 2,
            approved: true,
          },
        ] as const);
      case "promoting":
        if (pick() % 20 === 0) return { type: "step-failed", step: i, reason: "push rejected" };
        return choose([
          { type: "step-promoted", step: i, commit: `c${i}` },
          { type: "step-promoted", step: i, commit: `c${i}` },
          { type: "step-in-place", step: i, reason: "already runs it" },
        ] as const);
      case "guarding":
        return { type: "guard-elapsed", step: i };
      case "checking":
        return {
          type: "checks-reported",
          step: i,
          reports: Array.from({ length: i + 1 }, (_, j) => reportOf(j)),
        };
      default:
        return null;
    }
  }

  /** Drives a train with events that fit, each decision checked by `check`. */
  function simulate(
    seed: number,
    options: { readonly dryRun: boolean; readonly haltOn: "fatal" | "warning" },
    check: (before: TrainState, event: TrainEvent, decision: TrainDecision) => void = () =>
      undefined,
  ): TrainDecision[] {
    // A small deterministic generator (xorshift32): the same seed, the same run.
    let x = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) | 1;
    const pick = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    for (let warm = 0; warm < 8; warm++) pick();
    let state = startTrain({
      trainId: "TRN-S",
      plan: governed(2),
      dryRun: options.dryRun,
      haltOn: options.haltOn,
      now: t0,
    }).state;
    const decisions: TrainDecision[] = [];
    for (let round = 0, minute = 0; round < 80; round++, minute += 11 * 60) {
      const event = nextEvent(state, pick);
      if (event === null) break;
      const decision = decideTrain(state, event, at(minute));
      check(state, event, decision);
      decisions.push(decision);
      state = decision.state;
    }
    return decisions;
  }

  const runs = fc.record({
    seed: fc.integer(),
    dryRun: fc.boolean(),
    haltOn: fc.constantFrom("fatal" as const, "warning" as const),
  });

  it("never promotes without a passing gate asked after the approvals were complete (property)", () => {
    fc.assert(
      fc.property(runs, ({ seed, ...options }) => {
        simulate(seed, options, (_before, _event, decision) => {
          for (const action of decision.actions) {
            if (action.kind !== "promote") continue;
            const step = decision.state.steps[action.step];
            expect(step?.gate?.verdict).toBe("pass");
            const approval = step?.approval;
            if (options.dryRun) {
              expect(approval?.dryRun).toBe(true);
              continue;
            }
            expect(["approved", "executed"]).toContain(approval?.state);
            const last = Math.max(...(approval?.approvals ?? []).map((a) => Date.parse(a.at)));
            expect(Date.parse(step?.gate?.at ?? "")).toBeGreaterThanOrEqual(last);
          }
          if (options.dryRun) {
            expect(decision.actions.some((a) => a.kind === "request-approval")).toBe(false);
            expect(decision.actions.some((a) => a.kind === "fail-guard")).toBe(false);
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  it("a blocked gate or a rejection halts with nothing of that step promoted, and nothing after it (property)", () => {
    fc.assert(
      fc.property(runs, ({ seed, ...options }) => {
        const decisions = simulate(seed, options);
        const stopped = decisions.findIndex((d) =>
          d.state.steps.some((s) => s.phase === "blocked" || s.phase === "rejected"),
        );
        if (stopped === -1) return;
        const decision = decisions[stopped];
        expect(decision?.state.status).toBe("halted");
        expect(decision?.actions).toEqual([]);
        const index = decision?.state.steps.findIndex(
          (s) => s.phase === "blocked" || s.phase === "rejected",
        );
        expect(decision?.state.steps[index ?? -1]?.promotingAt).toBeNull();
        for (const later of decisions.slice(stopped + 1)) {
          expect(later.actions.some((a) => a.kind === "promote")).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("fails the guard of exactly the failing services on every halting check, final check or follow-up, and promotes nothing after (property)", () => {
    fc.assert(
      fc.property(runs, ({ seed, ...options }) => {
        let failed = false;
        simulate(seed, options, (before, event, decision) => {
          const guards = decision.actions.filter((a) => a.kind === "fail-guard");
          if (failed) expect(decision.actions.some((a) => a.kind === "promote")).toBe(false);
          if (guards.length > 0) failed = true;
          if (
            event.type !== "checks-reported" &&
            event.type !== "final-checks-reported" &&
            event.type !== "follow-up-reported"
          ) {
            expect(guards).toEqual([]);
            return;
          }
          if (!decision.changed) return;
          const attribution = attributeFailure({
            reports: event.reports,
            stackChecks: event.type === "checks-reported" ? [] : event.checks,
            haltOn: before.haltOn,
          });
          const expected =
            options.dryRun || attribution.kind === "none"
              ? []
              : attribution.kind === "step"
                ? [attribution.service]
                : [...new Set(attribution.steps.map((i) => before.plan.steps[i]?.service))];
          expect(guards.map((g) => g.service).sort()).toEqual([...expected].sort());
          for (const guard of guards) {
            expect(before.plan.steps[guard.step]?.service).toBe(guard.service);
            expect(guard.evidence.length).toBeGreaterThan(0);
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  it("replaying the same events gives the same decisions (property)", () => {
    fc.assert(
      fc.property(runs, ({ seed, ...options }) => {
        expect(simulate(seed, options)).toEqual(simulate(seed, options));
      }),
      { numRuns: 500 },
    );
  });
});

describe("strategy hooks", () => {
  const hookServices = [
    service("checkout", {
      deployment: {
        strategy: "canary",
        canary: {
          steps: [10, 100],
          bakeTime: "1m",
          promoteHook: {
            http: { url: "http://hooks.internal/promote", headers: { authorization: "Bearer x" } },
          },
          rollbackHook: { http: { url: "http://hooks.internal/rollback", method: "PUT" } },
        },
      },
    }),
    service("cart", {
      deployment: {
        strategy: "blue_green",
        blueGreen: { cutoverHook: { http: { url: "http://hooks.internal/cutover" } } },
      },
    }),
    service("search", {
      deployment: {
        strategy: "canary",
        canary: {
          steps: [50, 100],
          bakeTime: "1m",
          promoteHook: { manifest: { path: "envs/prod/search/rollout.yaml", patch: { w: 100 } } },
        },
      },
    }),
  ];
  const hookTrain = trainDoc([
    { service: "checkout", image: "registry.example.com/shop/checkout:v2", guardWindow: "10m" },
    { service: "cart", image: "registry.example.com/shop/cart:v2", guardWindow: "5m" },
    { service: "search", image: "registry.example.com/shop/search:v2", guardWindow: "1m" },
  ]);
  const hookPlan = (): TrainPlan => {
    const result = planTrain(hookTrain, hookServices);
    if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
    return result.plan;
  };
  const begin = (dryRun = false) =>
    cleared(startTrain({ trainId: "TRN-1", plan: hookPlan(), dryRun, now: t0 }).state, 0);
  const hookOk = (
    step: number,
    hook: "promote" | "cutover" | "rollback",
  ): Extract<TrainEvent, { type: "hook-reported" }> => ({
    type: "hook-reported",
    step,
    hook,
    ok: true,
    status: 200,
    detail: "HTTP 200",
  });

  it("calls the canary promote hook once the change landed, and guards only after it answered", () => {
    const promoted = decideTrain(begin(), { type: "step-promoted", step: 0, commit: "c0" }, at(1));
    expect(promoted.state.steps[0]).toMatchObject({
      phase: "hooking",
      commit: "c0",
      promotedAt: at(1),
      guardUntil: null,
    });
    expect(promoted.actions).toEqual([
      {
        kind: "call-hook",
        step: 0,
        service: "checkout",
        hook: "promote",
        url: "http://hooks.internal/promote",
        method: "POST",
        headers: { authorization: "Bearer x" },
        idempotencyKey: "TRN-1-s1-promote",
        body: {
          train: "train-42",
          trainId: "TRN-1",
          step: 1,
          service: "checkout",
          change: {
            kind: "image",
            image: "registry.example.com/shop/checkout:v2",
            path: "envs/prod/checkout",
          },
          commit: "c0",
          phase: "promote",
        },
      },
    ]);
    expect(promoted.events.map((e) => (e.data as { phase: string }).phase)).toEqual(["promoted"]);
    // A guard window that elapses before the hook answered changes nothing.
    expect(decideTrain(promoted.state, { type: "guard-elapsed", step: 0 }, at(30)).changed).toBe(
      false,
    );
    const answered = decideTrain(promoted.state, hookOk(0, "promote"), at(2));
    expect(answered.state.steps[0]).toMatchObject({ phase: "guarding", guardUntil: at(12) });
    expect(answered.state.steps[0]?.hooks).toEqual([
      {
        hook: "promote",
        kind: "http",
        target: "http://hooks.internal/promote",
        outcome: "ok",
        status: 200,
        detail: "HTTP 200",
        at: at(2),
      },
    ]);
    expect(answered.actions).toEqual([{ kind: "wait", step: 0, until: at(12) }]);
    expect(answered.events[0]?.data).toMatchObject({
      phase: "guarding",
      details: { hooks: [{ hook: "promote", outcome: "ok" }] },
    });
    // Once recorded, the outcome is never taken again.
    const again = decideTrain(answered.state, hookOk(0, "promote"), at(3));
    expect(again.changed).toBe(false);
    expect(releaseManifest(answered.state).promoted[0]?.hooks).toHaveLength(1);
  });

  it("a failing promote hook halts the train at that step: revert proposed, rollback hook called", () => {
    const promoted = decideTrain(begin(), { type: "step-promoted", step: 0, commit: "c0" }, at(1));
    const failed = decideTrain(
      promoted.state,
      {
        type: "hook-reported",
        step: 0,
        hook: "promote",
        ok: false,
        status: 500,
        detail: "HTTP 500: canary controller down",
      },
      at(2),
    );
    expect(failed.state.status).toBe("halted");
    expect(failed.state.steps.map((s) => s.phase)).toEqual(["failed", "pending", "pending"]);
    expect(failed.state.steps[0]?.failure).toContain("HTTP 500: canary controller down");
    expect(failed.state.attribution).toMatchObject({ kind: "step", step: 0 });
    expect(failed.events.map((e) => e.type)).toEqual(["governance.train-finished"]);
    expect(failed.actions.map((a) => a.kind)).toEqual([
      "fail-guard",
      "propose-revert",
      "call-hook",
    ]);
    expect(failed.actions[2]).toMatchObject({
      hook: "rollback",
      method: "PUT",
      url: "http://hooks.internal/rollback",
      idempotencyKey: "TRN-1-s1-rollback",
      body: { phase: "rollback", commit: "c0" },
    });
    const rolledBack = decideTrain(failed.state, hookOk(0, "rollback"), at(3));
    expect(rolledBack.changed).toBe(true);
    expect(rolledBack.state.status).toBe("halted");
    expect(rolledBack.state.steps[0]?.hooks?.map((h) => `${h.hook}:${h.outcome}`)).toEqual([
      "promote:failed",
      "rollback:ok",
    ]);
    expect(decideTrain(rolledBack.state, hookOk(0, "rollback"), at(4)).changed).toBe(false);
  });

  it("a failed guard of a canary step calls its rollback hook beside the revert", () => {
    let { state } = run(begin(), [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(1)],
      [hookOk(0, "promote"), at(1)],
      [{ type: "guard-elapsed", step: 0 }, at(11)],
    ]);
    const halted = decideTrain(
      state,
      { type: "checks-reported", step: 0, reports: [report(state, 0, badCheck())] },
      at(11),
    );
    state = halted.state;
    expect(state.status).toBe("halted");
    expect(halted.actions.map((a) => `${a.kind}${"hook" in a ? `:${a.hook}` : ""}`)).toEqual([
      "fail-guard",
      "propose-revert",
      "call-hook:rollback",
    ]);
  });

  it("calls the blue_green cutover hook at promotion, and hands a manifest hook to the git actuator", () => {
    const { state } = run(begin(), [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(1)],
      [hookOk(0, "promote"), at(1)],
      [{ type: "guard-elapsed", step: 0 }, at(11)],
    ]);
    const checked = run(state, [
      [{ type: "checks-reported", step: 0, reports: [report(state, 0)] }, at(11)],
      ...clearing(1, 11),
      [{ type: "step-promoted", step: 1, commit: "c1" }, at(12)],
    ]);
    expect(checked.state.steps[1]?.phase).toBe("hooking");
    expect(checked.actions.at(-1)).toMatchObject({
      kind: "call-hook",
      hook: "cutover",
      idempotencyKey: "TRN-1-s2-cutover",
      body: { phase: "cutover", step: 2, service: "cart" },
    });
    const third = run(checked.state, [
      [hookOk(1, "cutover"), at(12)],
      [{ type: "guard-elapsed", step: 1 }, at(17)],
      [{ type: "checks-reported", step: 1, reports: [report(checked.state, 1)] }, at(17)],
      ...clearing(2, 17),
      [{ type: "step-promoted", step: 2, commit: "c2" }, at(18)],
    ]);
    // The manifest hook is a git change: the step waits for it before its guard window.
    expect(third.state.steps[2]?.phase).toBe("hooking");
    expect(third.actions.some((a) => a.kind === "call-hook" && a.step === 2)).toBe(false);
    expect(third.actions.at(-1)).toEqual({
      kind: "apply-manifest-hook",
      step: 2,
      service: "search",
      hook: "promote",
      actionId: "TRN-1-s3-promote",
      path: "envs/prod/search/rollout.yaml",
      patch: { w: 100 },
    });
    expect(third.state.steps[2]?.hooks).toMatchObject([
      {
        hook: "promote",
        kind: "manifest",
        outcome: "requested",
        target: "envs/prod/search/rollout.yaml",
        at: at(18),
      },
    ]);
    expect(decideTrain(third.state, { type: "guard-elapsed", step: 2 }, at(40)).changed).toBe(
      false,
    );
    const change = { branch: "safedeploy/TRN-1-s3-promote", commit: "h3", prUrl: null, diff: "+w" };
    const applied = decideTrain(
      third.state,
      { ...hookOk(2, "promote"), status: null, detail: "committed h3", change },
      at(19),
    );
    expect(applied.state.steps[2]).toMatchObject({ phase: "guarding", guardUntil: at(20) });
    expect(applied.state.steps[2]?.hooks).toEqual([
      {
        hook: "promote",
        kind: "manifest",
        target: "envs/prod/search/rollout.yaml",
        outcome: "ok",
        status: null,
        detail: "committed h3",
        at: at(19),
        change,
      },
    ]);
    expect(decideTrain(applied.state, hookOk(2, "promote"), at(19)).changed).toBe(false);
    expect(releaseManifest(applied.state).promoted[2]?.hooks[0]?.change).toEqual(change);
  });

  it("halts when a manifest hook cannot be applied, and ignores a report nobody asked for", () => {
    const manifestOnly = planTrain(
      trainDoc([{ service: "search", image: "registry.example.com/shop/search:v2" }]),
      hookServices,
    );
    if (!manifestOnly.ok) throw new Error("plan");
    const start = cleared(
      startTrain({ trainId: "TRN-2", plan: manifestOnly.plan, dryRun: false, now: t0 }).state,
      0,
    );
    const unasked = decideTrain(start, hookOk(0, "promote"), at(1));
    expect(unasked.changed).toBe(false);
    expect(unasked.ignored).toMatch(/was not requested/);
    const promoted = decideTrain(start, { type: "step-promoted", step: 0, commit: "c" }, at(1));
    const failed = decideTrain(
      promoted.state,
      {
        type: "hook-reported",
        step: 0,
        hook: "promote",
        ok: false,
        status: null,
        detail: "envs/prod/search/rollout.yaml: no workload",
      },
      at(2),
    );
    expect(failed.state.status).toBe("halted");
    expect(failed.state.steps[0]?.failure).toBe(
      "promote hook (a patch of envs/prod/search/rollout.yaml) failed: envs/prod/search/rollout.yaml: no workload",
    );
    expect(failed.state.steps[0]?.hooks?.map((h) => `${h.hook}:${h.outcome}`)).toEqual([
      "promote:failed",
    ]);
    expect(failed.actions.map((a) => a.kind)).toEqual(["fail-guard", "propose-revert"]);
  });

  it("a dry run asks for a manifest hook's diff and records it as skipped", () => {
    const manifestOnly = planTrain(
      trainDoc([{ service: "search", image: "registry.example.com/shop/search:v2" }]),
      hookServices,
    );
    if (!manifestOnly.ok) throw new Error("plan");
    const start = cleared(
      startTrain({ trainId: "TRN-3", plan: manifestOnly.plan, dryRun: true, now: t0 }).state,
      0,
    );
    const promoted = decideTrain(start, { type: "step-promoted", step: 0, commit: "c" }, at(1));
    expect(promoted.actions.map((a) => a.kind)).toEqual(["apply-manifest-hook"]);
    expect(promoted.state.steps[0]?.hooks?.[0]?.detail).toMatch(/^dry run: patch w of /);
    const change = { branch: "safedeploy/TRN-3-s1-promote", commit: "d", prUrl: null, diff: "+w" };
    const shown = decideTrain(promoted.state, { ...hookOk(0, "promote"), change }, at(2));
    expect(shown.state.steps[0]?.phase).toBe("guarding");
    expect(shown.state.steps[0]?.hooks).toMatchObject([{ outcome: "skipped", change }]);
  });

  it("a dry run lists its hooks and calls none", () => {
    const { state, actions } = run(begin(true), [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(1)],
    ]);
    expect(state.steps[0]?.phase).toBe("guarding");
    expect(actions.map((a) => a.kind)).toEqual(["wait"]);
    expect(state.steps[0]?.hooks).toMatchObject([
      { hook: "promote", outcome: "skipped", target: "http://hooks.internal/promote" },
    ]);
    const halted = decideTrain(
      {
        ...state,
        steps: state.steps.map((s) => (s.index === 0 ? { ...s, phase: "checking" } : s)),
      },
      { type: "checks-reported", step: 0, reports: [report(state, 0, badCheck())] },
      at(11),
    );
    expect(halted.actions.map((a) => a.kind)).toEqual(["propose-revert"]);
    expect(halted.state.steps[0]?.hooks?.map((h) => `${h.hook}:${h.outcome}`)).toEqual([
      "promote:skipped",
      "rollback:skipped",
    ]);
  });

  it("calls each hook of a step at most once, whatever the events", () => {
    const planned = hookPlan();
    const hookEvent: fc.Arbitrary<TrainEvent> = fc.record({
      type: fc.constant("hook-reported" as const),
      step: fc.nat(2),
      hook: fc.constantFrom("promote" as const, "cutover" as const, "rollback" as const),
      ok: fc.boolean(),
      status: fc.constantFrom(200, 500, null),
      detail: fc.constant("x"),
    });
    const anyEvent: fc.Arbitrary<TrainEvent> = fc.oneof(
      hookEvent,
      fc.nat(2).map(gatePass),
      fc.nat(2).map(approvedAtOnce),
      fc.record({
        type: fc.constant("step-promoted" as const),
        step: fc.nat(2),
        commit: fc.constant("c"),
      }),
      fc.record({ type: fc.constant("guard-elapsed" as const), step: fc.nat(2) }),
      fc.record({ step: fc.nat(2), ok: fc.boolean() }).map(({ step, ok }) => ({
        type: "checks-reported" as const,
        step,
        reports: [
          {
            step,
            service: planned.steps[step]?.service ?? "?",
            checks: [ok ? okCheck() : badCheck()],
            regression: null,
          },
        ],
      })),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(anyEvent, fc.nat(2000)), { maxLength: 40 }), (events) => {
        let state = startTrain({ trainId: "p", plan: planned, dryRun: false, now: t0 }).state;
        const calls = new Set<string>();
        for (const [event, minute] of events) {
          const decision = decideTrain(state, event, at(minute));
          for (const action of decision.actions) {
            const key =
              action.kind === "call-hook"
                ? action.idempotencyKey
                : action.kind === "apply-manifest-hook"
                  ? action.actionId
                  : null;
            if (key === null) continue;
            expect(calls.has(key)).toBe(false);
            calls.add(key);
          }
          state = decision.state;
          for (const step of state.steps) {
            const names = (step.hooks ?? []).map((h) => h.hook);
            expect(new Set(names).size).toBe(names.length);
          }
        }
      }),
    );
  });
});

describe("deployedWhen", () => {
  const probe = {
    http: "http://email.internal/version",
    expect: { json: { "$.version": "v2" } },
    within: "10m",
  };
  const livePlan = (): TrainPlan => {
    const result = planTrain(
      trainDoc([
        { service: "email", image: "registry.example.com/email:v2", deployedWhen: probe },
        { service: "search", image: "registry.example.com/search:v2" },
      ]),
      services,
    );
    if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
    return result.plan;
  };
  const begin = (dryRun = false) =>
    cleared(startTrain({ trainId: "TRN-D", plan: livePlan(), dryRun, now: t0 }).state, 0);
  const probed = (ok: boolean): TrainEvent => ({
    type: "deploy-probed",
    step: 0,
    result: ok
      ? okCheck(probe.http)
      : {
          ...badCheck("fatal", probe.http),
          failures: [
            {
              expectation: "json $.version",
              expected: "v2",
              got: "v1",
              message: '$.version is "v1"',
            },
          ],
        },
  });

  it("probes again after 1 s, 2 s, 4 s, then every 5 s", () => {
    expect([1, 2, 3, 4, 10].map(deployProbeDelayMs)).toEqual([
      1_000,
      2_000,
      4_000,
      DEPLOY_PROBE_INTERVAL_MS,
      DEPLOY_PROBE_INTERVAL_MS,
    ]);
  });

  it("plans the probe as a fatal check with its deadline", () => {
    expect(livePlan().steps[0]?.deployedWhen).toEqual({
      check: {
        http: probe.http,
        expect: { status: 200, json: { "$.version": "v2" } },
        severity: "fatal",
      },
      within: "10m",
      withinMs: 600_000,
    });
    expect(livePlan().steps[1]?.deployedWhen).toBeNull();
  });

  it("waits until the change is live: that moment is the deploy time, then the guard window", () => {
    const promoted = decideTrain(begin(), { type: "step-promoted", step: 0, commit: "c0" }, at(1));
    expect(promoted.state.steps[0]).toMatchObject({
      phase: "deploying",
      commit: "c0",
      promotedAt: null,
      deployDeadline: at(11),
    });
    expect(promoted.actions).toEqual([
      {
        kind: "probe-deployed",
        step: 0,
        service: "email",
        check: livePlan().steps[0]?.deployedWhen?.check,
      },
    ]);
    // Not yet live: probe again in 5 s, nothing else happens.
    const notYet = decideTrain(promoted.state, probed(false), at(2));
    expect(notYet.state.steps[0]).toMatchObject({
      phase: "deploying",
      nextProbeAt: new Date(Date.parse(at(2)) + 1_000).toISOString(),
      deployProbesFailed: 1,
    });
    expect(notYet.actions).toEqual([]);
    expect(decideTrain(notYet.state, { type: "deploy-probe-due", step: 0 }, at(2)).changed).toBe(
      false,
    );
    const due = decideTrain(notYet.state, { type: "deploy-probe-due", step: 0 }, at(3));
    expect(due.actions.map((a) => a.kind)).toEqual(["probe-deployed"]);
    expect(due.state.steps[0]?.nextProbeAt).toBeNull();
    // Guard windows and checks wait for the deploy.
    expect(decideTrain(due.state, { type: "guard-elapsed", step: 0 }, at(30)).changed).toBe(false);
    const live = decideTrain(due.state, probed(true), at(4));
    expect(live.state.steps[0]).toMatchObject({
      phase: "guarding",
      promotedAt: at(4),
      guardUntil: at(14),
    });
    expect(live.events.map((e) => (e.data as { phase: string }).phase)).toEqual([
      "deployed",
      "guarding",
    ]);
    expect(releaseManifest(live.state).promoted[0]?.promotedAt).toBe(at(4));
    expect(decideTrain(live.state, probed(true), at(5)).changed).toBe(false);
  });

  it("halts with a revert of the step when the change is not live by its deadline", () => {
    const { state } = run(begin(), [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(1)],
      [probed(false), at(2)],
      [{ type: "deploy-probe-due", step: 0 }, at(11)],
    ]);
    const late = decideTrain(state, probed(false), at(11));
    expect(late.state.status).toBe("halted");
    expect(late.state.steps.map((s) => s.phase)).toEqual(["failed", "pending"]);
    expect(late.state.steps[0]?.failure).toBe(
      'not deployed within 10m: GET http://email.internal/version: $.version is "v1"',
    );
    expect(late.actions).toMatchObject([
      { kind: "fail-guard", step: 0, service: "email" },
      { kind: "propose-revert", step: 0, service: "email", commit: "c0" },
    ]);
  });

  it("a dry run does not wait: nothing it computes is ever deployed", () => {
    const promoted = decideTrain(
      begin(true),
      { type: "step-promoted", step: 0, commit: "c0" },
      at(1),
    );
    expect(promoted.state.steps[0]).toMatchObject({ phase: "guarding", promotedAt: at(1) });
    expect(promoted.actions.map((a) => a.kind)).toEqual(["wait"]);
  });
});

describe("a step already in place", () => {
  const plan = (): TrainPlan => {
    const result = planTrain(fourSteps, services);
    if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
    return result.plan;
  };
  const begin = () =>
    cleared(startTrain({ trainId: "TRN-P", plan: plan(), dryRun: false, now: t0 }).state, 0);
  const reason = "Deployment/checkout already runs registry.example.com/shop/checkout:v1.6.0";
  const inPlace: TrainEvent = { type: "step-in-place", step: 0, reason };

  it("is guarded and checked like a promotion, with no commit", () => {
    const landed = decideTrain(begin(), inPlace, at(1));
    expect(landed.state.steps[0]).toMatchObject({
      phase: "guarding",
      commit: null,
      promotedAt: at(1),
      inPlace: reason,
    });
    expect(landed.events[0]?.data).toMatchObject({
      phase: "promoted",
      commit: null,
      details: { inPlace: expect.stringContaining("already runs") as string },
    });
    expect(decideTrain(landed.state, inPlace, at(2)).changed).toBe(false);
  });

  it("failing its checks needs triage: the train has nothing of its own to revert there", () => {
    const { state } = run(begin(), [
      [inPlace, at(1)],
      [{ type: "guard-elapsed", step: 0 }, at(11)],
    ]);
    const failed = decideTrain(
      state,
      { type: "checks-reported", step: 0, reports: [report(state, 0, badCheck())] },
      at(11),
    );
    expect(failed.state.status).toBe("needs-triage");
    // The service is failing all the same: its gate blocks.
    expect(failed.actions.map((a) => a.kind)).toEqual(["fail-guard", "manual-triage"]);
    expect(failed.actions[0]).toMatchObject({ service: "checkout", step: 0 });
    expect(failed.actions[1]).toMatchObject({
      reason: expect.stringMatching(/already in place before this train/) as string,
    });
  });
});
