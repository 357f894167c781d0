import { parseArgs } from "node:util";
import { connectBus, describeError, provision } from "@safedeploy/jetstream";
import type { ProvisionReport } from "@safedeploy/jetstream";
import { passwordVariable } from "@safedeploy/schema";
import { EXIT, UsageError } from "../io.js";
import type { CliIo, Command } from "../io.js";

/** The NATS user that owns the topology (permissions.ts `PROVISIONER_USER`). */
export const PROVISIONER = "provisioner";

type Env = Readonly<Record<string, string | undefined>>;

const USAGE = `Usage: safedeploy provision [--json]

Creates, as the provisioning identity, everything SafeDeploy needs on NATS JetStream
(the topology in packages/schema): every stream, KV bucket and durable consumer, and
brings a drifted one back to its declaration. Idempotent: a second run changes nothing.
Services connected as their NATS users only bind to these; they may create nothing.

Connects to $NATS_URL (default nats://127.0.0.1:4222). Credentials: those in the URL
(nats://provisioner:PASSWORD@host:4222), else user "provisioner" with the password in
$${passwordVariable(PROVISIONER)}, else none (a server without authorisation).
Namespace: $SAFEDEPLOY_SUBJECT_ROOT, $SAFEDEPLOY_STREAM_PREFIX.
Exit 0 provisioned, 1 NATS refused or unreachable (message shown), 2 usage error.

Options:
  --json  print {created, updated, unchanged} as JSON`;

/** Provisions the topology on `env`'s NATS as the provisioner; the report of what changed. */
export async function provisionFromEnv(env: Env): Promise<ProvisionReport> {
  const password = env[passwordVariable(PROVISIONER)] ?? "";
  const bus = await connectBus({
    servers: (env.NATS_URL ?? "nats://127.0.0.1:4222").split(","),
    name: "safedeploy-provision",
    ns: { root: env.SAFEDEPLOY_SUBJECT_ROOT ?? "sd", prefix: env.SAFEDEPLOY_STREAM_PREFIX ?? "" },
    timeoutMs: 10_000,
    ...(password === "" || (env.NATS_URL ?? "").includes("@")
      ? {}
      : { user: PROVISIONER, pass: password }),
  });
  try {
    return await provision(bus);
  } finally {
    await bus.close();
  }
}

function summary(report: ProvisionReport): string {
  const line = (label: string, names: readonly string[]) =>
    names.length === 0 ? "" : `${label} (${names.length}): ${names.join(", ")}\n`;
  return (
    line("created", report.created) +
    line("updated", report.updated) +
    `unchanged: ${report.unchanged.length}\n`
  );
}

/** `safedeploy provision`: the topology, created by the one identity allowed to. */
export const provisionCommand: Command = {
  name: "provision",
  summary: "create the NATS streams, KV buckets and durables as the provisioner",
  usage: USAGE,
  async run(args, io: CliIo) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { json: { type: "boolean" } },
    });
    if (positionals.length > 0) throw new UsageError("provision takes no positional argument");
    let report: ProvisionReport;
    try {
      report = await provisionFromEnv(io.env);
    } catch (error) {
      io.stderr(`safedeploy provision: ${describeError(error)}\n`);
      return EXIT.negative;
    }
    io.stdout(values.json === true ? `${JSON.stringify(report)}\n` : summary(report));
    return EXIT.ok;
  },
};
