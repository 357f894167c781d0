import { parseArgs } from "node:util";
import { generate } from "./commands/generate.js";
import { demo } from "./commands/demo.js";
import { up } from "./commands/up.js";
import { audit } from "./commands/audit.js";
import { evidence } from "./commands/evidence.js";
import { gate } from "./commands/gate.js";
import { canary } from "./commands/canary.js";
import { guards } from "./commands/guards.js";
import { deadletters } from "./commands/deadletters.js";
import { dora } from "./commands/dora.js";
import { incidents } from "./commands/incidents.js";
import { proposals } from "./commands/proposals.js";
import { provisionCommand } from "./commands/provision.js";
import { replay } from "./commands/replay.js";
import { release } from "./commands/release.js";
import { rules } from "./commands/rules.js";
import { snapshot } from "./commands/snapshot.js";
import { validate } from "./commands/validate.js";
import { importCommand } from "./commands/import.js";
import { kubernetesSecrets } from "./commands/kubernetes-secrets.js";
import { migrate } from "./commands/migrate.js";
import { EXIT, UsageError } from "./io.js";
import type { CliInvocation, CliIo, Command } from "./io.js";

/** Every command, in help order. A new command is a file in `src/commands/` and a line here. */
export const COMMANDS: readonly Command[] = [
  validate,
  importCommand,
  rules,
  generate,
  audit,
  evidence,
  snapshot,
  gate,
  canary,
  incidents,
  proposals,
  guards,
  deadletters,
  dora,
  replay,
  release,
  provisionCommand,
  migrate,
  kubernetesSecrets,
  up,
  demo,
];

/** Contract commands not built yet: they say so (exit 2) instead of "unknown command". */
const PLANNED: readonly string[] = [];

function toolHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  const lines = COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`);
  return `safedeploy: reliability governance control plane

Usage: safedeploy COMMAND [ARGS] [--help]

Commands:
${lines.join("\n")}

Run "safedeploy COMMAND --help" for a command's arguments.
Environment: SAFEDEPLOY_CATALOG (default ./catalog), SAFEDEPLOY_API, SAFEDEPLOY_TOKEN.
`;
}

function isUsageProblem(error: unknown): error is Error {
  if (error instanceof UsageError) return true;
  // node:util parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes for unknown or bad options.
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return error instanceof TypeError && code?.startsWith("ERR_PARSE_ARGS") === true;
}

async function runCommand(command: Command, args: readonly string[], io: CliIo) {
  const { tokens } = parseArgs({
    args: [...args],
    strict: false,
    allowPositionals: true,
    tokens: true,
    options: { help: { type: "boolean", short: "h" } },
  });
  if (tokens.some((token) => token.kind === "option" && token.name === "help")) {
    io.stdout(`${command.usage}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    if (!isUsageProblem(error)) throw error;
    io.stderr(`safedeploy ${command.name}: ${error.message}\n\n${command.usage}\n`);
    return EXIT.usage;
  }
}

/**
 * Runs `safedeploy` in-process: parses `argv` (the arguments after the program name),
 * dispatches to the command, writes only through `stdout`/`stderr`, and returns the exit code.
 * Reads nothing from `process` (a missing `cwd` means the working directory); bugs, not bad
 * input, still throw.
 */
export async function runCli(invocation: CliInvocation): Promise<number> {
  const { argv, ...io } = invocation;
  const { tokens } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    tokens: true,
    options: { help: { type: "boolean", short: "h" } },
  });
  const first = tokens.find((token) => token.kind === "positional");
  // Options before the command are the tool's own: only --help.
  const toolOptions = tokens.flatMap((token) =>
    token.kind === "option" && (first === undefined || token.index < first.index) ? [token] : [],
  );
  const unknown = toolOptions.find((option) => option.name !== "help");
  if (unknown !== undefined) {
    io.stderr(`safedeploy: unknown option ${unknown.rawName}\n\n${toolHelp()}`);
    return EXIT.usage;
  }
  if (toolOptions.length > 0) {
    io.stdout(toolHelp());
    return EXIT.ok;
  }
  if (first === undefined) {
    io.stderr(toolHelp());
    return EXIT.usage;
  }
  let name = first.value;
  let rest = argv.slice(first.index + 1);
  if (name === "help") {
    // `safedeploy help COMMAND` is `safedeploy COMMAND --help`.
    if (rest[0] === undefined) {
      io.stdout(toolHelp());
      return EXIT.ok;
    }
    [name, rest] = [rest[0], ["--help"]];
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command !== undefined) return runCommand(command, rest, io);
  if (PLANNED.includes(name)) {
    io.stderr(`safedeploy ${name}: not built yet in this version\n`);
  } else {
    io.stderr(`safedeploy: unknown command "${name}"\n\n${toolHelp()}`);
  }
  return EXIT.usage;
}

/** {@link runCli} with the arguments apart from the effects. */
export function main(argv: readonly string[], io: CliIo): Promise<number> {
  return runCli({ ...io, argv });
}
