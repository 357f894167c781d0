import type { CommandName, CommandRequest, CommandResult } from "@safedeploy/schema";
import type { SendCommand } from "./deps.js";
import { ApiError, commandFailure } from "./errors.js";

/** The service that answers each command, for messages. */
const OWNER: Record<CommandName, string> = {
  "proposal.approve": "proposal",
  "proposal.reject": "proposal",
  "proposal.revert": "proposal",
  "proposal.promotion": "proposal",
  "incident.transition": "incident",
  "freeze.create": "policy",
  "freeze.lift": "policy",
  "freeze.override": "policy",
  "canary.step": "policy",
  "deploy.record": "proposal",
  "deploy.list": "proposal",
  "gate.query": "policy",
  "guard.fail": "policy",
  "guard.clear": "policy",
  "train.start": "release-train",
  "train.status": "release-train",
  "train.list": "release-train",
};

/**
 * Sends a command and returns its result, or throws the {@link ApiError} of its refusal; no
 * answer at all is `unavailable` (503), naming the service that did not answer.
 */
export async function runCommand<C extends CommandName>(
  send: SendCommand,
  command: C,
  request: CommandRequest<C>,
  /** The request field a refusal without details is about (e.g. the `id` path parameter). */
  field?: { readonly in: "params" | "body"; readonly path: string },
): Promise<CommandResult<C>> {
  let reply;
  try {
    reply = await send(command, request);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "unavailable") {
      throw new ApiError("unavailable", `the ${OWNER[command]} service did not answer`);
    }
    throw new ApiError("internal", `${command} failed`, [], { cause: error });
  }
  if (!reply.ok) {
    const failure = commandFailure(reply.error);
    if (field === undefined || failure.details.length > 0 || failure.status >= 500) throw failure;
    if (failure.code === "conflict") throw failure;
    throw new ApiError(failure.code, failure.message, [{ ...field, message: failure.message }]);
  }
  return reply.result;
}
