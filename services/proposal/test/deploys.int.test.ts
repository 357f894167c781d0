import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openKv, provision, publishEvent } from "@safedeploy/jetstream";
import type { Envelope } from "@safedeploy/schema";
import { createTestBus, readStream } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import {
  DEPLOY_HISTORY,
  DeployHistory,
  SeenDeploy,
  listDeploys,
  recordDeploy,
} from "../src/deploys.js";
import type { DeployDeps } from "../src/deploys.js";

let harness: TestBus;
let deps: DeployDeps;
const published: Envelope[] = [];

const deploy = (revision: string, step: number | null = null) => ({
  reporter: "argocd" as const,
  app: "checkout",
  revision,
  trigger: "on-deployed" as const,
  step,
  at: "2026-12-07T10:00:00.000Z",
  commitTime: null,
  details: {},
});

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  deps = {
    seen: await openKv(harness.bus, "deploys", SeenDeploy),
    history: await openKv(harness.bus, "deploys", DeployHistory),
    // The real stream, and a record of every publish: a repeat must not even try.
    publish: (envelope) => {
      published.push(envelope);
      return publishEvent(harness.bus, envelope);
    },
  };
});

afterAll(async () => {
  await harness.cleanup();
});

describe("deploy.record", () => {
  it("publishes once per identity and never again, whatever the stream's duplicate window", async () => {
    const first = await recordDeploy(deps, { service: "checkout", deploy: deploy("a".repeat(40)) });
    expect(first.recorded).toBe(true);
    const again = await recordDeploy(deps, {
      service: "checkout",
      deploy: { ...deploy("a".repeat(40)), at: "2026-12-08T10:00:00.000Z", reporter: "api" },
    });
    // The repeat is refused by the `seen` key before publishing: Nats-Msg-Id is not relied on.
    expect(again).toMatchObject({ recorded: false, deploy: { reporter: "argocd" } });
    expect(published).toHaveLength(1);
    const other = await recordDeploy(deps, {
      service: "checkout",
      deploy: deploy("a".repeat(40), 0),
    });
    expect(other.recorded).toBe(true);
    expect(published).toHaveLength(2);
  });

  it("records one of several racing reports, and the stream holds one message", async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        recordDeploy(deps, { service: "checkout", deploy: deploy("b".repeat(40)) }),
      ),
    );
    expect(answers.filter((a) => a.recorded)).toHaveLength(1);
    const stored = (await readStream(harness.bus, "GOVERNANCE")).filter(
      (e) => e.type === "governance.deploy-recorded" && e.id === answers[0]?.id,
    );
    expect(stored).toHaveLength(1);
    expect((await listDeploys(deps, { service: "checkout" })).items).toHaveLength(3);
  });

  it(`keeps the newest ${DEPLOY_HISTORY} deploys of a service, oldest first`, async () => {
    for (let i = 0; i < DEPLOY_HISTORY + 5; i += 1) {
      await recordDeploy(deps, { service: "cart", deploy: { ...deploy(`r${i}`), app: "cart" } });
    }
    const { items } = await listDeploys(deps, { service: "cart" });
    expect(items).toHaveLength(DEPLOY_HISTORY);
    expect(items[0]?.revision).toBe("r5");
    expect(items.at(-1)?.revision).toBe(`r${DEPLOY_HISTORY + 4}`);
  });
});
