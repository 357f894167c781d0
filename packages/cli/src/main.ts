// The `safedeploy` process: wires runCli to this process's arguments, streams and environment.
import { runCli } from "./cli.js";

process.exitCode = await runCli({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
