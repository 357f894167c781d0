// The CLI's door to NATS, for the commands that read JetStream directly (replay, audit verify's
// anchors): servers and namespace from the invocation's env, as the services read them.
import { connectBus } from "@safedeploy/jetstream";
import type { Bus } from "@safedeploy/jetstream";
import type { CliIo } from "./io.js";

/** Connects as `name` to `NATS_URL` (default `nats://127.0.0.1:4222`) in the configured namespace. */
export function connectFromEnv(
  io: CliIo,
  name: string,
  options: { readonly timeoutMs?: number } = {},
): Promise<Bus> {
  return connectBus({
    servers: (io.env.NATS_URL ?? "nats://127.0.0.1:4222").split(","),
    name,
    ns: {
      root: io.env.SAFEDEPLOY_SUBJECT_ROOT ?? "sd",
      prefix: io.env.SAFEDEPLOY_STREAM_PREFIX ?? "",
    },
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}
