// pnpm bench: builds, then runs every bench/*.bench.ts with Node's type stripping against dist.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const only = process.argv.slice(2);
const benches = readdirSync(new URL(".", import.meta.url))
  .filter((file) => file.endsWith(".bench.ts"))
  .filter((file) => only.length === 0 || only.some((name) => file.startsWith(name)))
  .sort();
let failed = false;
for (const file of benches) {
  process.stdout.write(`\n== ${file}\n`);
  const run = spawnSync(
    process.execPath,
    ["--no-warnings", new URL(file, import.meta.url).pathname],
    {
      stdio: "inherit",
    },
  );
  failed ||= run.status !== 0;
}
process.exit(failed ? 1 : 0);
