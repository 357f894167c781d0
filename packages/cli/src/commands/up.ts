import { parseArgs } from "node:util";
import { EXIT } from "../io.js";
import type { CliIo, Command } from "../io.js";
import { onInterrupt } from "../stack/signals.js";
import { startStack } from "../stack/stack.js";
import type { Stack } from "../stack/stack.js";
import { StackError } from "../stack/tools.js";

const USAGE = `Usage: safedeploy up [--no-color]

Runs the whole control plane on this machine, one process per service (collector, budget,
incident, policy, proposal, git-actuator, audit, gateway), their logs prefixed [service].
Builds the services first (tsc -b) when their dist is missing or stale.

Embedded defaults, state under $SAFEDEPLOY_HOME (default ./.safedeploy):
  NATS_URL unset      nats-server with JetStream (PATH or /usr/sbin), store in $SAFEDEPLOY_HOME/nats,
                      on 127.0.0.1:4222 when free, else a free port
  DATABASE_URL unset  a private PostgreSQL cluster (initdb/pg_ctl, not as root), else an embedded
                      PGlite served on a local port, data in $SAFEDEPLOY_HOME/pg
  PROMETHEUS_URL      default http://127.0.0.1:9090 (not started: see safedeploy demo)
  SAFEDEPLOY_CATALOG  default ./catalog
  SAFEDEPLOY_ENV_REPO needed by the git actuator; without it the actuator is not started
  GATEWAY_PORT        default 8080 (a free port when 8080 is taken)

Ctrl-C stops the services, then the servers; a second Ctrl-C kills them. A crashed service is
restarted with backoff.`;

function colorOf(io: CliIo, args: { "no-color"?: boolean | undefined }): boolean {
  return args["no-color"] !== true && io.env.NO_COLOR === undefined && process.stdout.isTTY;
}

/** Waits for Ctrl-C, then stops `stack`; resolves once everything has stopped. */
export function runUntilInterrupted(stack: Stack, io: CliIo): Promise<void> {
  return new Promise((resolve) => {
    const remove = onInterrupt(
      (signal) => {
        io.stderr(
          `\n[up] ${signal}: stopping the services, then the servers (Ctrl-C again to kill)\n`,
        );
        void stack.stop().then(() => {
          remove();
          io.stderr("[up] stopped\n");
          resolve();
        });
      },
      () => {
        io.stderr("[up] killing everything\n");
        stack.kill();
        remove();
        resolve();
      },
    );
  });
}

export const up: Command = {
  name: "up",
  summary: "run the whole control plane on this machine (embedded NATS and PostgreSQL)",
  usage: USAGE,
  async run(args, io) {
    const { values } = parseArgs({
      args: [...args],
      options: { "no-color": { type: "boolean" } },
      allowPositionals: false,
    });
    const color = colorOf(io, values);
    const say = (text: string) => {
      io.stdout(`${color ? "\u001b[1m[up]\u001b[0m" : "[up]"} ${text}\n`);
    };
    let stack: Stack;
    try {
      stack = await startStack({
        env: io.env,
        cwd: io.cwd ?? process.cwd(),
        say,
        write: io.stdout,
        color,
      });
    } catch (error) {
      if (!(error instanceof StackError)) throw error;
      io.stderr(`safedeploy up: ${error.message}\n`);
      return error.exitCode;
    }
    if (stack.notReady.length > 0) {
      say(`not ready yet: ${stack.notReady.join(", ")} (see their logs above); still running`);
    }
    say(`SafeDeploy is up. Dashboard: ${stack.gatewayUrl}/  (state in ${stack.home})`);
    say(`try: SAFEDEPLOY_API=${stack.gatewayUrl} safedeploy snapshot   ·   Ctrl-C to stop`);
    await runUntilInterrupted(stack, io);
    return EXIT.ok;
  },
};
