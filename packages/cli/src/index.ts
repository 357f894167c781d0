/**
 * @packageDocumentation
 * The `safedeploy` command line. `main` runs it in-process with injected output.
 */
export { main } from "./main.js";
export { EXIT, UsageError } from "./io.js";
export type { CliIo, Command } from "./io.js";
