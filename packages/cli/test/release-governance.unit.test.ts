// `release status` and `release run` against a stand-in API on a local port: a step blocked by
// its gate shows the gate's reasons, a step awaiting approval shows who approved and how to
// approve; `run` says once that a step waits, keeps waiting, and exits 1 naming a block or a
// rejection.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";
import type { TrainView } from "@safedeploy/schema";

const repoRoot = new URL("../../..", import.meta.url).pathname;
const VALID = "test/fixtures/catalog/valid";
const ID = "TRN-0A1B2C";

type Step = TrainView["steps"][number];

function step(index: number, service: string, extra: Partial<Step> = {}): Step {
  return {
    index,
    service,
    change: `image registry.example.com/shop/${service}:v2 → envs/prod/${service}`,
    phase: "pending",
    proposalId: `${ID}-s${index + 1}`,
    branch: null,
    commit: null,
    deployedAt: null,
    guardUntil: null,
    outcome: null,
    diff: null,
    evidence: [],
    gate: null,
    approval: null,
    ...extra,
  };
}

function view(steps: Step[], extra: Partial<TrainView> = {}): TrainView {
  return {
    id: ID,
    name: "train-42",
    state: "running",
    dryRun: false,
    actor: "alice",
    createdAt: "2026-11-24T09:00:00.000Z",
    updatedAt: "2026-11-24T09:00:00.000Z",
    reason: null,
    steps,
    followUps: [],
    revert: null,
    triage: null,
    manifest: {},
    ...extra,
  };
}

const checked = (index: number, service: string) =>
  step(index, service, {
    phase: "checked",
    outcome: "ok",
    commit: "0123456789abcdef",
    gate: { verdict: "pass", reasons: [] },
  });
const awaiting = step(1, "cart", {
  phase: "awaiting-approval",
  gate: { verdict: "pass", reasons: [] },
  approval: { proposalId: `${ID}-s2`, state: "pending", required: 2, approvals: ["alice"] },
});
const freeze = {
  code: "freeze-active",
  message: "manual freeze until 2026-11-25T00:00:00.000Z: launch week",
  value: "freeze:cart:manual:x",
  threshold: "2026-11-25T00:00:00.000Z",
};
const blockedReason = `step 2 (cart) blocked by its gate: freeze-active: ${freeze.message}`;
const blocked = view(
  [
    checked(0, "checkout"),
    step(1, "cart", { phase: "blocked", gate: { verdict: "block", reasons: [freeze] } }),
  ],
  { state: "halted", reason: blockedReason },
);

/** An API that answers `POST /v1/trains` with the first view and each GET with the next one. */
async function startApi(views: readonly TrainView[]) {
  let served = 0;
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    const current = views[Math.min(served, views.length - 1)];
    if (request.method === "GET") served += 1;
    const body =
      request.url === "/v1/trains" && request.method === "GET"
        ? { items: [current], next: null }
        : current;
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}

let api: Awaited<ReturnType<typeof startApi>> | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function cli(argv: string[], views: readonly TrainView[]) {
  api = await startApi(views);
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env: { SAFEDEPLOY_API: api.url, SAFEDEPLOY_TOKEN: "t", SAFEDEPLOY_CATALOG: VALID },
    cwd: repoRoot,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

describe("safedeploy release: the gate and approvals of each step", () => {
  it("status shows a step awaiting approval with its approvals and how to approve (exit 0)", async () => {
    const result = await cli(["release", "status", ID], [view([checked(0, "checkout"), awaiting])]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `  step 2 cart: awaiting-approval: 1 of 2 approvals (alice); approve with: safedeploy proposals approve ${ID}-s2\n`,
    );
  });

  it("status shows a blocked step with its gate's reasons (exit 1)", async () => {
    const result = await cli(["release", "status", ID], [blocked]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `  step 2 cart: blocked by its gate (block): freeze-active: ${freeze.message}\n`,
    );
    expect(result.stdout).toContain(`release train train-42 (${ID}): halted: ${blockedReason}\n`);
  });

  it("run says once that a step awaits approval, keeps waiting, and exits 0 once it went through", async () => {
    const second = step(1, "cart", {
      ...awaiting,
      approval: { ...awaiting.approval!, state: "approved", approvals: ["alice", "bob"] },
    });
    const result = await cli(
      ["release", "run", `${VALID}/train.yaml`],
      [
        view([step(0, "checkout", { phase: "gating" }), step(1, "cart")]),
        view([checked(0, "checkout"), awaiting]),
        view([checked(0, "checkout"), awaiting]),
        view([checked(0, "checkout"), awaiting]),
        view([checked(0, "checkout"), { ...second, phase: "promoting" }]),
        view([checked(0, "checkout"), { ...second, phase: "checked", outcome: "ok" }], {
          state: "completed",
          reason: "all 2 steps promoted and checked",
        }),
      ],
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout.match(/awaiting-approval/g)).toHaveLength(1);
    expect(result.stdout).toContain(
      `  step 2 cart: awaiting-approval: 1 of 2 approvals (alice); approve with: safedeploy proposals approve ${ID}-s2\n`,
    );
    expect(result.stdout).toContain("  step 2 cart: promoting\n");
    expect(result.stdout).toMatch(/completed: all 2 steps promoted and checked\n$/);
  }, 20_000);

  it("run exits 1 and names the block or the rejection", async () => {
    const halted = await cli(["release", "run", `${VALID}/train.yaml`], [blocked]);
    expect(halted.code).toBe(1);
    expect(halted.stdout).toContain(`halted: ${blockedReason}\n`);
    await api?.close();

    const rejection = "step 2 (cart) promotion rejected by bob: not during the sale";
    const rejected = await cli(
      ["release", "run", `${VALID}/train.yaml`],
      [
        view(
          [
            checked(0, "checkout"),
            step(1, "cart", {
              phase: "rejected",
              evidence: [{ type: "rejection", by: "bob", reason: "not during the sale" }],
              approval: { ...awaiting.approval!, state: "rejected" },
            }),
          ],
          { state: "halted", reason: rejection },
        ),
      ],
    );
    expect(rejected.code).toBe(1);
    expect(rejected.stdout).toContain("  step 2 cart: rejected by bob: not during the sale\n");
    expect(rejected.stdout).toContain(`halted: ${rejection}\n`);
  });

  it("a dry run prints the approvals each promotion would need", async () => {
    const wouldNeed = (index: number, service: string, required: number) =>
      step(index, service, {
        phase: "checked",
        outcome: "ok",
        diff: "+image\n",
        gate: { verdict: "pass", reasons: [] },
        approval: {
          proposalId: `${ID}-s${index + 1}`,
          state: "pending",
          required,
          approvals: [],
        },
      });
    const result = await cli(
      ["release", "run", `${VALID}/train.yaml`, "--dry-run"],
      [
        view([wouldNeed(0, "checkout", 1), wouldNeed(1, "cart", 2)], {
          state: "completed",
          dryRun: true,
          reason: "all 2 steps promoted and checked",
        }),
      ],
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "--- step 1 checkout: its promotion would need 1 distinct approval (no proposal in a dry run)\n",
    );
    expect(result.stdout).toContain(
      "--- step 2 cart: its promotion would need 2 distinct approvals (no proposal in a dry run)\n",
    );
  });
});
