import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canaryStepOf,
  deployBeforeBurn,
  deployEventId,
  describeDeployBeforeBurn,
  liveRevisionAt,
  rollbackTarget,
  serviceOfApp,
} from "@safedeploy/core";
import type { DeployEvent, HistoryCommit } from "@safedeploy/core";

const t0 = Date.parse("2026-12-07T10:00:00.000Z");
const at = (minutes: number) => new Date(t0 + minutes * 60_000).toISOString();
const sha = (c: string) => c.repeat(40).slice(0, 40);

const deploy = (over: Partial<DeployEvent>): DeployEvent => ({
  service: "checkout",
  reporter: "argocd",
  app: "checkout",
  revision: sha("a"),
  trigger: "on-deployed",
  step: null,
  at: at(0),
  commitTime: null,
  details: {},
  ...over,
});

describe("deployEventId", () => {
  it("depends on app, revision, trigger and step only", () => {
    const a = deploy({ reporter: "argocd", at: at(0), details: { x: 1 } });
    const b = deploy({ reporter: "api", at: at(5), details: {} });
    expect(deployEventId(a)).toBe(deployEventId(b));
    expect(deployEventId(deploy({ step: 1 }))).not.toBe(deployEventId(deploy({ step: 2 })));
    expect(deployEventId(deploy({ step: 0 }))).not.toBe(deployEventId(deploy({ step: null })));
    expect(deployEventId(deploy({ trigger: "on-sync-failed" }))).not.toBe(deployEventId(a));
  });

  it("is injective over its four fields (property)", () => {
    const key = fc.record({
      app: fc.stringMatching(/^[a-z0-9-]{1,8}$/),
      revision: fc.stringMatching(/^[0-9a-f]{1,8}$/),
      trigger: fc.constantFrom("on-deployed" as const, "on-rollout-step-completed" as const),
      step: fc.option(fc.nat(20), { nil: null }),
    });
    fc.assert(
      fc.property(key, key, (x, y) => {
        const same =
          x.app === y.app &&
          x.revision === y.revision &&
          x.trigger === y.trigger &&
          x.step === y.step;
        expect(deployEventId(x) === deployEventId(y)).toBe(same);
      }),
    );
  });
});

describe("serviceOfApp", () => {
  it("maps an app to the service of that name, and an unknown app to null", () => {
    const services = [{ name: "checkout" }, { name: "cart" }];
    expect(serviceOfApp(services, "cart")).toBe("cart");
    expect(serviceOfApp(services, "payments")).toBeNull();
  });
});

describe("canaryStepOf", () => {
  const canary = { steps: [10, 50, 100] };
  it("starts a step only for a completed setWeight step at a declared weight", () => {
    const step = deploy({ trigger: "on-rollout-step-completed", step: 0, details: { weight: 10 } });
    expect(canaryStepOf(step, canary)).toEqual({ kind: "step", weight: 10 });
    expect(canaryStepOf({ ...step, details: { weight: 25 } }, canary)).toMatchObject({
      kind: "none",
      reason: expect.stringContaining("not a declared step") as unknown,
    });
    expect(canaryStepOf({ ...step, details: {} }, canary).kind).toBe("none");
    expect(canaryStepOf({ ...step, details: { weight: "10" } }, canary).kind).toBe("none");
    expect(canaryStepOf(step, undefined).kind).toBe("none");
    expect(canaryStepOf(deploy({ details: { weight: 10 } }), canary).kind).toBe("none");
  });
});

describe("deployBeforeBurn", () => {
  it("is the latest live deploy at or before the burn, never a failed sync or a later one", () => {
    const d1 = deploy({ revision: sha("1"), at: at(0) });
    const failed = deploy({ revision: sha("2"), at: at(4), trigger: "on-sync-failed" });
    const d3 = deploy({ revision: sha("3"), at: at(9) });
    expect(deployBeforeBurn([d3, failed, d1], at(5))).toBe(d1);
    expect(deployBeforeBurn([d1, d3], at(9))).toBe(d3);
    expect(deployBeforeBurn([d3], at(5))).toBeNull();
  });

  it("never returns a deploy after the burn (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 60 })),
        fc.integer({ min: 0, max: 60 }),
        (minutes, burn) => {
          const found = deployBeforeBurn(
            minutes.map((m) => deploy({ at: at(m) })),
            at(burn),
          );
          const before = minutes.filter((m) => m <= burn);
          if (before.length === 0) expect(found).toBeNull();
          else expect(found?.at).toBe(at(Math.max(...before)));
        },
      ),
    );
  });
});

describe("liveRevisionAt", () => {
  it("names the commit synced last before the burn, skipping what names no commit", () => {
    const deploys = [
      deploy({ revision: sha("a"), at: at(0) }),
      deploy({ revision: sha("B"), at: at(5) }),
      // A Rollouts step names pods, not a commit; a later sync is not what was serving.
      deploy({ revision: "7d9f8c.5b6c", trigger: "on-rollout-completed", at: at(8) }),
      deploy({ revision: sha("c"), at: at(30) }),
    ];
    expect(liveRevisionAt(deploys, at(10))).toBe(sha("b"));
    expect(liveRevisionAt(deploys, at(1))).toBe(sha("a"));
    expect(liveRevisionAt(deploys, at(-1))).toBeUndefined();
    expect(liveRevisionAt([], at(10))).toBeUndefined();
  });

  it("is always a lowercase commit SHA of a deploy at or before the burn, when any", () => {
    const event = fc.record({
      revision: fc.oneof(fc.stringMatching(/^[0-9a-fA-F]{7,40}$/), fc.string()),
      minute: fc.integer({ min: -60, max: 60 }),
    });
    fc.assert(
      fc.property(fc.array(event), fc.integer({ min: -60, max: 60 }), (events, burn) => {
        const deploys = events.map((e) => deploy({ revision: e.revision, at: at(e.minute) }));
        const live = liveRevisionAt(deploys, at(burn));
        if (live === undefined) return;
        expect(live).toMatch(/^[0-9a-f]{7,40}$/);
        expect(
          deploys.some(
            (d) => d.revision.toLowerCase() === live && Date.parse(d.at) <= Date.parse(at(burn)),
          ),
        ).toBe(true);
      }),
    );
  });
});

describe("describeDeployBeforeBurn", () => {
  it("says how long after which revision the burn began", () => {
    const synced = deploy({ revision: "4a4fb30".padEnd(40, "0"), at: at(0) });
    expect(describeDeployBeforeBurn(synced, at(3))).toBe(
      "burn began 3 min after checkout revision 4a4fb30 synced",
    );
    expect(
      describeDeployBeforeBurn(
        { ...synced, trigger: "on-rollout-step-completed", step: 1 },
        at(0.5),
      ),
    ).toBe("burn began 30 s after checkout revision 4a4fb30 step 1 completed a rollout step");
  });
});

describe("rollbackTarget", () => {
  // Newest first: C (path, committed before the burn but synced after it), B (other path), A (path).
  const history: HistoryCommit[] = [
    { commit: sha("c"), committedAt: at(4), changesPath: true },
    { commit: sha("b"), committedAt: at(2), changesPath: false },
    { commit: sha("a"), committedAt: at(1), changesPath: true },
  ];

  it("without deploy events follows the repo: the newest path commit before the burn", () => {
    expect(rollbackTarget({ history, burnBegan: at(5), deploys: [] })).toEqual({
      kind: "chosen",
      commit: sha("c"),
      source: "repo",
    });
  });

  it("with a deploy event picks the path commit that was live at the burn", () => {
    const deploys = [
      deploy({ revision: sha("b"), at: at(3) }), // B synced: A's change live
      deploy({ revision: sha("c"), at: at(7) }), // C synced after the burn began
    ];
    expect(rollbackTarget({ history, burnBegan: at(5), deploys })).toEqual({
      kind: "chosen",
      commit: sha("a"),
      source: "deploy",
    });
    // A short SHA, as Argo shows it, works the same.
    expect(
      rollbackTarget({
        history,
        burnBegan: at(8),
        deploys: [deploy({ revision: "ccccccc", at: at(7) })],
      }),
    ).toMatchObject({ kind: "chosen", commit: sha("c") });
  });

  it("is ambiguous, never a guess, when the live revision is unknown to the history", () => {
    const deploys = [deploy({ revision: sha("f"), at: at(3) })];
    expect(rollbackTarget({ history, burnBegan: at(5), deploys })).toMatchObject({
      kind: "ambiguous",
    });
    expect(rollbackTarget({ history, burnBegan: at(0), deploys: [] })).toMatchObject({
      kind: "ambiguous",
    });
  });

  it("never chooses a commit newer than the live revision (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
        fc.nat(11),
        (changes, liveIndex) => {
          const commits = changes.map((changesPath, i) => ({
            commit: i.toString(16).padStart(40, "0"),
            committedAt: at(changes.length - i),
            changesPath,
          }));
          const live = commits[liveIndex % commits.length];
          if (live === undefined) return;
          const target = rollbackTarget({
            history: commits,
            burnBegan: at(100),
            deploys: [deploy({ revision: live.commit, at: at(50) })],
          });
          const expected = commits.slice(liveIndex % commits.length).find((c) => c.changesPath);
          if (expected === undefined) expect(target.kind).toBe("ambiguous");
          else
            expect(target).toEqual({ kind: "chosen", commit: expected.commit, source: "deploy" });
        },
      ),
    );
  });
});
