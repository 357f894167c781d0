import type { TypedKv } from "@safedeploy/jetstream";
import type {
  AttemptOutcome,
  DeliveryRecord,
  Notification,
  NotifierTarget,
} from "@safedeploy/notify";
import type { Envelope } from "@safedeploy/schema";
import type { ContextRecord } from "./store.js";

/** A notifier ready to send: its catalog entry and how one attempt goes out. */
export interface Sender extends NotifierTarget {
  /** One attempt of `notification` under delivery id `id`. */
  send(notification: Notification, id: string): Promise<AttemptOutcome>;
}

/** How many deliveries an event's notification waits for the proposal it is about. */
export const WAIT_FOR_PROPOSAL_DELIVERIES = 3;

/** What the notifier's handler needs: its notifiers, its KV state, the bus, a clock, metrics. */
export interface NotifierDeps {
  readonly senders: readonly Sender[];
  readonly deliveries: TypedKv<DeliveryRecord>;
  readonly context: TypedKv<ContextRecord>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
  readonly now: () => string;
  /** Called after each attempt, e.g. to count outcomes on /metrics. */
  readonly onAttempt: (notifier: string, record: DeliveryRecord) => void;
}
