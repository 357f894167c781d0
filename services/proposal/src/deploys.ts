import { createHash } from "node:crypto";
import { deployEventId } from "@safedeploy/core";
import { KvConflictError } from "@safedeploy/jetstream";
import type { TypedKv } from "@safedeploy/jetstream";
import { DeployRecord, createEnvelope } from "@safedeploy/schema";
import type { CommandRequest, CommandResult, Envelope } from "@safedeploy/schema";
import { z } from "zod";

/** How many deploy events a service's history keeps (the newest). */
export const DEPLOY_HISTORY = 100;

/** `seen.<hash of the identity>`: a deploy event recorded once, forever (beyond the stream's window). */
export const SeenDeploy = z.object({ id: z.string(), service: z.string(), deploy: DeployRecord });
export type SeenDeploy = z.infer<typeof SeenDeploy>;

/** `history.<service>`: the service's newest deploy events, oldest first. */
export const DeployHistory = z.object({
  items: z.array(DeployRecord.extend({ id: z.string() })),
});
export type DeployHistory = z.infer<typeof DeployHistory>;

export interface DeployDeps {
  readonly seen: TypedKv<SeenDeploy>;
  readonly history: TypedKv<DeployHistory>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
}

const seenKey = (id: string) => `seen.${createHash("sha256").update(id).digest("hex")}`;

/**
 * `deploy.record`: one `governance.deploy-recorded` per (app, revision, trigger, step). A repeat
 * finds its `seen` key and changes nothing. The event is published before the key is written:
 * a crash in between is retried under the same `Nats-Msg-Id`, so it is never lost, and two racing
 * reports publish one message (the stream dedups) and one of them writes the key.
 */
export async function recordDeploy(
  deps: DeployDeps,
  request: CommandRequest<"deploy.record">,
): Promise<CommandResult<"deploy.record">> {
  const id = deployEventId(request.deploy);
  const key = seenKey(id);
  const seen = await deps.seen.get(key);
  if (seen !== null) return { id, recorded: false, deploy: seen.value.deploy };
  await deps.publish(
    createEnvelope(
      { type: "governance.deploy-recorded", id, service: request.service, data: request.deploy },
      { source: "proposal", time: request.deploy.at },
    ),
  );
  try {
    await deps.seen.create(key, { id, service: request.service, deploy: request.deploy });
  } catch (error) {
    if (!(error instanceof KvConflictError)) throw error;
    return { id, recorded: false, deploy: request.deploy };
  }
  await deps.history.mutate(`history.${request.service}`, (current) => {
    const items = current?.value.items ?? [];
    if (items.some((item) => item.id === id)) return undefined;
    return { items: [...items, { ...request.deploy, id }].slice(-DEPLOY_HISTORY) };
  });
  return { id, recorded: true, deploy: request.deploy };
}

/** `deploy.list`: the service's recorded deploy events, oldest first. */
export async function listDeploys(
  deps: DeployDeps,
  request: CommandRequest<"deploy.list">,
): Promise<CommandResult<"deploy.list">> {
  const entry = await deps.history.get(`history.${request.service}`);
  return { items: (entry?.value.items ?? []).map((item) => DeployRecord.parse(item)) };
}
