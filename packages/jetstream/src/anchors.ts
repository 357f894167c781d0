import { AUDIT_CONSUMERS } from "@safedeploy/schema";
import type { Bus } from "./connection.js";
import { acknowledgedThrough } from "./provision.js";

/**
 * Per stream, the sequence up to which the audit service acknowledged every message (it acks a
 * batch only once committed): the anchors that let `verifyChain` see a cut-off tail. A stream
 * whose audit durable does not exist (yet) has no anchor.
 */
export async function auditAnchors(
  bus: Bus,
): Promise<{ readonly stream: string; readonly storedThrough: number }[]> {
  const anchors = await Promise.all(
    AUDIT_CONSUMERS.map(async (consumer) => {
      const storedThrough = await acknowledgedThrough(bus, consumer);
      return storedThrough === null ? [] : [{ stream: consumer.stream, storedThrough }];
    }),
  );
  return anchors.flat();
}
