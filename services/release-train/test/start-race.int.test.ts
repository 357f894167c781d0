import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestCommand } from "@safedeploy/jetstream";
import type { ReleaseTrainDocument } from "@safedeploy/schema";
import { SERVICES, startTrainWorld, waitForTrain } from "./harness.js";

/* Two replicas on the real bus, racing to start the same train name. */
let world: Awaited<ReturnType<typeof startTrainWorld>>;

const train = (name: string, tag: string): ReleaseTrainDocument => ({
  apiVersion: "safedeploy.dev/v1",
  kind: "ReleaseTrain",
  metadata: { name },
  spec: {
    steps: SERVICES.map((service) => ({
      service,
      image: `shop/${service}:${tag}`,
      guardWindow: "1s",
      checks: [
        { http: world.health.url(service), expect: { status: 200 }, severity: "fatal" as const },
      ],
    })),
    finalChecks: [],
    followUps: [],
  },
});

const startRequest = (document: ReleaseTrainDocument, dryRun = false) =>
  requestCommand(world.harness.bus, "train.start", { train: document, dryRun, actor: "alice" });

beforeAll(async () => {
  world = await startTrainWorld(2);
});

afterAll(async () => {
  await world.stop();
});

describe("starting a train is a compare-and-set on its name", () => {
  it("of concurrent starts of the same train exactly one wins; the others get a conflict", async () => {
    const document = train("raced", "v2");
    const replies = await Promise.all(Array.from({ length: 6 }, () => startRequest(document)));
    const won = replies.flatMap((reply) => (reply.ok ? [reply.result] : []));
    expect(won).toHaveLength(1);
    const winner = won[0]!;
    const refused = replies.flatMap((reply) => (reply.ok ? [] : [reply.error]));
    expect(refused).toHaveLength(5);
    for (const error of refused) {
      expect(error).toMatchObject({
        code: "conflict",
        message: `train raced is already running as ${winner.id}`,
      });
    }

    // A dry run of the same train is no second run: it is allowed while the real one runs.
    const dry = await startRequest(document, true);
    expect(dry.ok).toBe(true);

    // Only the winner ran; the list holds it and the dry run, nothing of the refused starts.
    const done = await waitForTrain(world.harness, winner.id, (t) => t.state !== "running", 60_000);
    expect(done.state).toBe("completed");
    const listed = await requestCommand(world.harness.bus, "train.list", { limit: 50 });
    if (!listed.ok) throw new Error(listed.error.message);
    expect(listed.result.items.map((t) => t.id).sort()).toEqual(
      [winner.id, dry.ok ? dry.result.id : ""].sort(),
    );

    // Once it finished, the name is free again: the next start takes the stale claim over.
    const again = await startRequest(train("raced", "v2"));
    expect(again.ok).toBe(true);
    if (again.ok)
      await waitForTrain(world.harness, again.result.id, (t) => t.state !== "running", 60_000);
  }, 120_000);
});
