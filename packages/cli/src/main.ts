import { rules } from "./commands/rules.js";
import { validate } from "./commands/validate.js";
import { EXIT, UsageError } from "./io.js";
import type { CliIo, Command } from "./io.js";

/** Commands of the contract that later work adds; they say so instead of pretending. */
const PLANNED = [
  "up",
  "demo",
  "snapshot",
  "gate",
  "incidents",
  "proposals",
  "evidence",
  "audit",
  "replay",
  "release",
];

const COMMANDS: readonly Command[] = [validate, rules];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `safedeploy: reliability governance control plane

Usage: safedeploy COMMAND [ARGS] [--help]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Environment: SAFEDEPLOY_CATALOG (default ./catalog), SAFEDEPLOY_API, SAFEDEPLOY_TOKEN.
`;
}

/** Runs the CLI and returns the exit code; never calls process.exit. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.stderr : io.stdout)(help());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    if (PLANNED.includes(name)) {
      io.stderr(`safedeploy ${name}: not built yet in this version\n`);
    } else {
      io.stderr(`safedeploy: unknown command "${name}"\n\n${help()}`);
    }
    return EXIT.usage;
  }
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout(`${command.usage}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    const usageProblem =
      error instanceof UsageError ||
      (error instanceof TypeError &&
        (error as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS") === true);
    if (usageProblem) {
      io.stderr(`safedeploy ${name}: ${error.message}\n\n${command.usage}\n`);
      return EXIT.usage;
    }
    throw error;
  }
}
