import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  approveProposal,
  blockPromotionProposal,
  promoteCanaryProposal,
  promotionProposal,
  recordPreviewRefusal,
  recordActionOutcome,
  proposalKey,
  rejectProposal,
  revertProposal,
  rollbackProposal,
  supersedeProposal,
} from "@safedeploy/core";
import type { Proposal } from "@safedeploy/core";

const at = "2026-11-24T09:05:00.000Z";
const proposal = (required = 1): Proposal =>
  rollbackProposal(
    {
      incident: { id: "INC-1", service: "checkout", slo: "availability", severity: "fast-burn" },
      rollbackPath: "envs/prod/checkout",
      burnBegan: "2026-11-24T09:01:00.000Z",
      required,
      at,
    },
    () => "PRP-1",
  );
const by = (who: string) => ({ by: who, at, reason: "looks right" });

describe("proposals", () => {
  it("keys a rollback by incident and kind, and a block by service, kind and cause", () => {
    expect(proposal().key).toBe("INC-1:rollback-rollout");
    expect(proposalKey("block-promotion", { service: "checkout", causeId: "verdict:9" })).toBe(
      "checkout:block-promotion:verdict:9",
    );
    expect(proposal()).toMatchObject({
      state: "pending",
      plan: {
        action: "git-revert",
        path: "envs/prod/checkout",
        burnBegan: "2026-11-24T09:01:00.000Z",
      },
      summary: "Roll back checkout: availability is fast-burn (INC-1)",
    });
  });

  it("approving twice records one approval", () => {
    const once = approveProposal(proposal(), by("ana"));
    if (!once.ok) throw new Error(once.message);
    expect(once).toMatchObject({
      changed: true,
      nowApproved: true,
      proposal: { state: "approved" },
    });
    const twice = approveProposal(once.proposal, by("ana"));
    expect(twice).toMatchObject({ ok: true, changed: false, nowApproved: false });
    if (twice.ok) expect(twice.proposal.approvals).toHaveLength(1);
  });

  it("needs `required` distinct approvers (four eyes)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.constantFrom("ana", "bo", "cy", "di"), { maxLength: 12 }),
        (required, people) => {
          let current = proposal(required);
          let approvedEvents = 0;
          for (const person of people) {
            const result = approveProposal(current, by(person));
            if (!result.ok) throw new Error(result.message);
            if (result.nowApproved) approvedEvents += 1;
            current = result.proposal;
          }
          const distinct = new Set(people).size;
          expect(current.state).toBe(distinct >= required ? "approved" : "pending");
          expect(approvedEvents).toBe(distinct >= required ? 1 : 0);
          expect(new Set(current.approvals.map((a) => a.by)).size).toBe(current.approvals.length);
        },
      ),
    );
  });

  it("cannot approve a rejected or superseded proposal", () => {
    const rejected = rejectProposal(proposal());
    if (!rejected.ok) throw new Error(rejected.message);
    expect(approveProposal(rejected.proposal, by("ana"))).toMatchObject({
      ok: false,
      code: "conflict",
    });
    expect(rejectProposal(rejected.proposal)).toMatchObject({ ok: true, changed: false });
    const superseded = supersedeProposal(proposal());
    expect(superseded.state).toBe("superseded");
    expect(approveProposal(superseded, by("ana"))).toMatchObject({ ok: false, code: "conflict" });
    const approved = approveProposal(proposal(), by("ana"));
    if (!approved.ok) throw new Error(approved.message);
    expect(rejectProposal(approved.proposal)).toMatchObject({ ok: false, code: "conflict" });
    expect(supersedeProposal(approved.proposal).state).toBe("approved");
  });
});

describe("block-promotion and promote-canary proposals", () => {
  const reasons = [
    { code: "burn-rate-high", message: "burn 16.2 > 1 over 1h", value: 16.2, threshold: 1 },
  ];

  it("a blocked verdict proposes pausing the Rollout, keyed by its cause", () => {
    const block = blockPromotionProposal(
      {
        service: "checkout",
        causeId: "governance.verdict:checkout:t1",
        reasons,
        rollbackPath: "envs/prod/checkout",
        required: 2,
        at,
      },
      () => "PRP-2",
    );
    expect(block).toMatchObject({
      key: "checkout:block-promotion:governance.verdict:checkout:t1",
      kind: "block-promotion",
      incidentId: null,
      state: "pending",
      required: 2,
      plan: { action: "pause-rollout", path: "envs/prod/checkout", reasons: ["burn-rate-high"] },
      summary: "Block promotion of checkout: burn 16.2 > 1 over 1h",
    });
  });

  it("without a rollback path the block is recorded only", () => {
    const block = blockPromotionProposal(
      {
        service: "legacy",
        causeId: "v",
        reasons: [{ code: "no-rollback", message: "no rollback", value: null, threshold: null }],
        rollbackPath: null,
        required: 1,
        at,
      },
      () => "PRP-3",
    );
    expect(block.plan).toEqual({ action: "record-only", reasons: ["no-rollback"] });
  });

  it("a baked canary proposes the next weight", () => {
    const promote = promoteCanaryProposal(
      {
        service: "checkout",
        causeId: "governance.canary-healthy:checkout:10",
        path: "envs/prod/checkout",
        from: 10,
        to: 50,
        required: 1,
        at,
      },
      () => "PRP-4",
    );
    expect(promote).toMatchObject({
      key: "checkout:promote-canary:governance.canary-healthy:checkout:10",
      kind: "promote-canary",
      plan: { action: "set-canary-weight", path: "envs/prod/checkout", from: 10, to: 50 },
    });
  });

  it("records the actuator's outcome only on an approved proposal", () => {
    const approved = approveProposal(proposal(), by("ana"));
    if (!approved.ok) throw new Error(approved.message);
    expect(recordActionOutcome(approved.proposal, "executed").state).toBe("executed");
    expect(recordActionOutcome(approved.proposal, "needs-triage").state).toBe("needs-triage");
    expect(recordActionOutcome(proposal(), "executed").state).toBe("pending");
    const rejected = rejectProposal(proposal());
    if (!rejected.ok) throw new Error(rejected.message);
    expect(recordActionOutcome(rejected.proposal, "executed").state).toBe("rejected");
  });

  it("approving after the action ran returns the proposal unchanged, for anyone", () => {
    const approved = approveProposal(proposal(), by("ana"));
    if (!approved.ok) throw new Error(approved.message);
    for (const outcome of ["executed", "needs-triage"] as const) {
      const done = recordActionOutcome(approved.proposal, outcome);
      for (const who of ["ana", "bob"]) {
        expect(approveProposal(done, by(who))).toEqual({
          ok: true,
          proposal: done,
          changed: false,
          nowApproved: false,
        });
      }
    }
  });
});

describe("revertProposal", () => {
  it("reverts one service's path for a cause that is not an incident, keyed by the cause", () => {
    const revert = revertProposal(
      {
        service: "checkout",
        causeId: "TRN-1:step-3",
        path: "envs/prod/checkout",
        commit: "abc123",
        reason: "release train t, step 3: checkout failed its content check",
        required: 2,
        at,
      },
      () => "PRP-9",
    );
    expect(revert).toMatchObject({
      key: "checkout:rollback-rollout:TRN-1:step-3",
      kind: "rollback-rollout",
      incidentId: null,
      state: "pending",
      required: 2,
      plan: { action: "git-revert", path: "envs/prod/checkout", commit: "abc123" },
      summary: "Revert checkout: release train t, step 3: checkout failed its content check",
    });
    const withoutCommit = revertProposal(
      {
        service: "checkout",
        causeId: "TRN-1:step-4",
        path: "envs/prod/checkout",
        commit: null,
        reason: "r",
        required: 1,
        at,
      },
      () => "PRP-10",
    );
    expect(withoutCommit.plan).toEqual({ action: "git-revert", path: "envs/prod/checkout" });
  });

  it("makes a pending rollback whose preview found harm need triage, and nothing else", () => {
    const pending = proposal();
    expect(recordPreviewRefusal(pending)).toMatchObject({ state: "needs-triage" });
    const approved = approveProposal(pending, by("ana"));
    if (!approved.ok) throw new Error(approved.message);
    expect(recordPreviewRefusal(approved.proposal)).toBe(approved.proposal);
    const rejected = rejectProposal(pending);
    if (!rejected.ok) throw new Error(rejected.message);
    expect(recordPreviewRefusal(rejected.proposal)).toBe(rejected.proposal);
  });

  it("makes a release train's step a promotion proposal that waits for its approvals", () => {
    const promotion = promotionProposal(
      {
        service: "search",
        trainId: "TRN-7",
        step: 1,
        summary: "image registry/search:v2",
        plan: { action: "set-image", path: "envs/prod/search", image: "registry/search:v2" },
        required: 2,
        at,
      },
      () => "TRN-7-s2",
    );
    expect(promotion).toMatchObject({
      id: "TRN-7-s2",
      kind: "promote-release",
      state: "pending",
      causeId: "TRN-7:step-2",
      key: "search:promote-release:TRN-7-s2",
      required: 2,
    });
    const first = approveProposal(promotion, by("alice"));
    if (!first.ok) throw new Error(first.message);
    expect(first.proposal.state).toBe("pending");
    const second = approveProposal(first.proposal, by("bob"));
    if (!second.ok) throw new Error(second.message);
    expect(second).toMatchObject({ nowApproved: true, proposal: { state: "approved" } });
  });
});
