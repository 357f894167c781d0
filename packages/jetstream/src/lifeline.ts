import type { ConsumerMessages } from "@nats-io/jetstream";
import { qualifiedName } from "@safedeploy/schema";
import type { ConsumerDeclaration } from "@safedeploy/schema";
import type { Bus } from "./connection.js";
import { describeError } from "./errors.js";
import { attachConsumer } from "./provision.js";

/**
 * Watches a pull loop's status and, when its durable consumer is deleted or missing, recreates it
 * at once and closes the loop so the caller restarts it on the new consumer. Without this a
 * deleted consumer would only be noticed after two missed heartbeats (tens of seconds).
 */
export async function recreateWhenLost(
  bus: Bus,
  declaration: ConsumerDeclaration,
  current: ConsumerMessages,
  hooks: { readonly stopping: () => boolean; readonly recreated: () => void },
): Promise<void> {
  const stream = qualifiedName(bus.ns, declaration.stream);
  const durable = qualifiedName(bus.ns, declaration.durable);
  for await (const status of current.status()) {
    if (hooks.stopping()) return;
    if (status.type !== "consumer_deleted" && status.type !== "consumer_not_found") continue;
    try {
      const report = await attachConsumer(bus, declaration);
      if (report.created.length > 0) {
        hooks.recreated();
        bus.log.warn({ stream, durable, after: status.type }, "consumer recreated");
      }
      await current.close();
      return;
    } catch (error) {
      bus.log.warn({ stream, durable, error: describeError(error) }, "consumer not reachable yet");
    }
  }
}
