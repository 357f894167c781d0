import { headers as natsHeaders } from "@nats-io/transport-node";
import type { Msg, Subscription as NatsSubscription } from "@nats-io/transport-node";
import { COMMANDS, commandReply, commandSubject } from "@safedeploy/schema";
import type {
  CommandError,
  CommandName,
  CommandReply,
  CommandRequest,
  CommandResult,
} from "@safedeploy/schema";
import type { Bus } from "./connection.js";
import { CommandFailedError, describeError } from "./errors.js";
import { formatTraceparent, newCorrelationId, traceOf } from "./trace.js";

/** Requests of one command a replica answers at once. */
const COMMANDS_IN_FLIGHT = 64;

export type CommandHandler<C extends CommandName> = (
  request: CommandRequest<C>,
) => Promise<CommandResult<C>>;

export interface CommandServer {
  stop(): Promise<void>;
}

function failure(
  code: CommandError["code"],
  message: string,
  details?: unknown[],
): CommandReply<never> {
  return { ok: false, error: { code, message, ...(details === undefined ? {} : { details }) } };
}

/**
 * Answers a command. Replicas share a queue group, so each request is answered once. Resolves once
 * the server routes requests to it. The handler
 * throws {@link CommandFailedError} to refuse (e.g. `conflict` for an illegal transition).
 */
export async function serveCommand<C extends CommandName>(
  bus: Bus,
  command: C,
  handler: CommandHandler<C>,
): Promise<CommandServer> {
  const schema = COMMANDS[command].request;
  const subscription: NatsSubscription = bus.connection.subscribe(commandSubject(bus.ns, command), {
    queue: `${bus.ns.prefix}${command}`,
  });
  const answer = async (msg: Msg): Promise<void> => {
    let reply: CommandReply<C>;
    let body: unknown;
    try {
      body = msg.json();
    } catch {
      body = undefined;
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      reply = failure(
        "invalid_request",
        parsed.error.issues
          .map((issue) => `${issue.path.join(".") || "(body)"}: ${issue.message}`)
          .join("; "),
        parsed.error.issues.map((issue) => ({
          path: issue.path.join("."),
          message: issue.message,
        })),
      );
    } else {
      try {
        reply = { ok: true, result: await handler(parsed.data as CommandRequest<C>) };
      } catch (error) {
        reply =
          error instanceof CommandFailedError
            ? failure(
                error.code as CommandError["code"],
                error.message,
                error.details === undefined ? undefined : [...error.details],
              )
            : failure("internal", "the command failed; see the service log");
        if (!(error instanceof CommandFailedError)) {
          bus.log.error({ command, error: describeError(error) }, "command handler failed");
        }
      }
    }
    msg.respond(JSON.stringify(reply));
  };
  // Requests are answered concurrently, as replicas would answer them (every command that writes
  // does so by compare-and-set): a gate query never queues behind another's KV reads.
  const inFlight = new Set<Promise<void>>();
  const done = (async () => {
    for await (const msg of subscription) {
      const task = answer(msg).finally(() => inFlight.delete(task));
      inFlight.add(task);
      if (inFlight.size >= COMMANDS_IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  })();
  // Resolve only once the server has registered the subscription: a service that says it started
  // must not answer its first caller with "no responders".
  await bus.connection.flush();
  return {
    stop: async () => {
      await subscription.drain();
      await done;
    },
  };
}

/**
 * Sends a command and validates the reply. Resolves to the reply (ok or a refusal); rejects only
 * when nobody answers in time, with code `unavailable`.
 */
export async function requestCommand<C extends CommandName>(
  bus: Bus,
  command: C,
  request: CommandRequest<C>,
  options: { timeoutMs?: number; correlationId?: string } = {},
): Promise<CommandReply<C>> {
  const h = natsHeaders();
  const correlationId = options.correlationId ?? newCorrelationId();
  h.set("traceparent", formatTraceparent(traceOf(correlationId, `${command}:${correlationId}`)));
  let answer;
  try {
    answer = await bus.connection.request(
      commandSubject(bus.ns, command),
      JSON.stringify(request),
      {
        timeout: options.timeoutMs ?? 5_000,
        headers: h,
      },
    );
  } catch (error) {
    throw new CommandFailedError("unavailable", `no answer to ${command}: ${describeError(error)}`);
  }
  const parsed = commandReply(command).safeParse(answer.json());
  if (!parsed.success) {
    throw new CommandFailedError("internal", `malformed reply to ${command}`);
  }
  return parsed.data;
}
