/**
 * @packageDocumentation
 * The `safedeploy` command line. {@link runCli} runs it in-process with injected output and
 * environment; `src/main.ts` (the binary) wires it to the process.
 */
export { COMMANDS, main, runCli } from "./cli.js";
export { EXIT, UsageError } from "./io.js";
export type { CliInvocation, CliIo, Command } from "./io.js";
