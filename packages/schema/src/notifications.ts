import { z } from "zod";
import { Duration, HttpUrl, ResourceName, Timestamp } from "./primitives.js";

/**
 * What a notifier may be told about: the outward names of the events SafeDeploy reports (issue
 * 17). Each is derived from one stream event (see `@safedeploy/notify`'s `notificationOf`).
 */
export const NOTIFICATION_KINDS = [
  "incident.opened",
  "incident.escalated",
  "incident.resolved",
  "proposal.created",
  "proposal.approved",
  "proposal.executed",
  "proposal.needs-triage",
  "freeze.opened",
  "freeze.lifted",
  "train.halted",
  "train.completed",
] as const;
export const NotificationKind = z.enum(NOTIFICATION_KINDS, {
  message: `must be one of ${NOTIFICATION_KINDS.join(", ")}`,
});
export type NotificationKind = z.infer<typeof NotificationKind>;

/** A file holding a secret (a signing key, a Slack incoming-webhook URL); never the secret itself. */
const SecretFile = z
  .string({ message: "must be a file path" })
  .trim()
  .min(1, { message: "must be a file path" })
  .max(1_024)
  .refine((path) => !/[\0\n\r]/.test(path), { message: "must be a file path" });

/** The delivery attempts a notifier makes for one event before it gives up (the first included). */
export const MAX_NOTIFY_ATTEMPTS = 10;

/**
 * A `kind: Notifier` document: where to send which events. `type: webhook` POSTs Standard
 * Webhooks 1.0 (signed with the key in `secretFile`) to `url`; `type: slack` posts Block Kit to
 * the Slack incoming-webhook URL held in `urlFile`.
 */
export const NotifierDocument = z.strictObject({
  apiVersion: z.literal("safedeploy.dev/v1", { message: "must be safedeploy.dev/v1" }),
  kind: z.literal("Notifier"),
  metadata: z.strictObject({ name: ResourceName }),
  spec: z
    .strictObject({
      type: z.enum(["webhook", "slack"], { message: "must be webhook or slack" }),
      /** webhook: the receiver (not a secret). */
      url: HttpUrl.optional(),
      /** webhook: the signing key, `whsec_` + base64 (Standard Webhooks). */
      secretFile: SecretFile.optional(),
      /** slack: the incoming-webhook URL (a secret: whoever has it may post). */
      urlFile: SecretFile.optional(),
      /** Only events about these services; omitted: every service (a global notifier). */
      services: z.array(ResourceName).min(1, { message: "must name a service" }).optional(),
      /** Only these events; omitted: every kind. */
      events: z.array(NotificationKind).min(1, { message: "must name an event" }).optional(),
      /** How long one attempt may take before it counts as a timeout (retried). */
      timeout: Duration.default("15s"),
      maxAttempts: z
        .number()
        .int()
        .min(1, { message: "must be at least 1" })
        .max(MAX_NOTIFY_ATTEMPTS, { message: `must be at most ${MAX_NOTIFY_ATTEMPTS}` })
        .default(8),
    })
    .superRefine((spec, ctx) => {
      const need = (field: "url" | "secretFile" | "urlFile") => {
        if (spec[field] === undefined) {
          ctx.addIssue({ code: "custom", path: [field], message: `is required for ${spec.type}` });
        }
      };
      const refuse = (field: "url" | "secretFile" | "urlFile") => {
        if (spec[field] !== undefined) {
          ctx.addIssue({ code: "custom", path: [field], message: `is not used by ${spec.type}` });
        }
      };
      if (spec.type === "webhook") {
        need("url");
        need("secretFile");
        refuse("urlFile");
      } else {
        need("urlFile");
        refuse("url");
        refuse("secretFile");
      }
    }),
});
export type NotifierDocument = z.infer<typeof NotifierDocument>;

const Id = z.string().min(1).max(256);

/** `governance.notification-delivered`: a receiver accepted a notification (2xx). */
export const NotificationDelivered = z.object({
  notifier: ResourceName,
  /** The `webhook-id`: derived from the event and the notifier, the same on every attempt. */
  deliveryId: Id,
  eventId: Id,
  event: NotificationKind,
  attempts: z.number().int().positive(),
  status: z.number().int(),
  at: Timestamp,
});

/** `governance.notification-failed`: one failed attempt; `final` when the notifier gave up. */
export const NotificationFailed = z.object({
  notifier: ResourceName,
  deliveryId: Id,
  eventId: Id,
  event: NotificationKind,
  attempt: z.number().int().positive(),
  /** The HTTP status, or null for a timeout or a connection error. */
  status: z.number().int().nullable(),
  error: z.string().max(1_000),
  final: z.boolean(),
  at: Timestamp,
});
