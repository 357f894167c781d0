import { createEnvelope, messageId } from "@safedeploy/schema";
import type { ConsumerDeclaration, Envelope } from "@safedeploy/schema";

/** A valid poll job for `service`, numbered `n` (its id and interval derive from n). */
export function pollJob(service: string, n: number): Envelope<"metrics.poll-requested"> {
  const start = new Date(Date.UTC(2026, 10, 24, 9, 0, 0) + n * 30_000);
  const end = new Date(start.getTime() + 30_000);
  return createEnvelope(
    {
      type: "metrics.poll-requested",
      id: messageId("metrics.poll-requested", service, start.toISOString()),
      service,
      data: { intervalStart: start.toISOString(), intervalEnd: end.toISOString(), mode: "direct" },
    },
    { source: "test", time: start.toISOString() },
  );
}

/** A consumer of poll jobs with test-friendly limits. */
export function pollConsumer(overrides: Partial<ConsumerDeclaration> = {}): ConsumerDeclaration {
  return {
    stream: "METRICS",
    durable: "test-worker",
    filter: "metrics.poll-requested",
    ackWait: "5s",
    maxDeliver: 3,
    maxAckPending: 1000,
    ...overrides,
  };
}

export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
