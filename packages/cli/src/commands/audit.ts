import { parseArgs } from "node:util";
import { verifyChain } from "@safedeploy/audit";
import type { ChainReport } from "@safedeploy/audit";
import { createPool } from "@safedeploy/db";
import { EXIT, UsageError } from "../io.js";
import type { CliIo, Command } from "../io.js";

/** The database a command reads the audit log from: `DATABASE_URL`, else a usage error. */
export function databaseUrlOf(io: CliIo): string {
  const url = io.env.DATABASE_URL;
  if (url === undefined || url === "") {
    throw new UsageError("DATABASE_URL is not set: point it at the audit database (postgres://…)");
  }
  return url;
}

/** Runs `work` on a small pool of `url`, always closing it. */
export async function withDatabase<T>(
  url: string,
  work: (pool: ReturnType<typeof createPool>) => Promise<T>,
): Promise<T> {
  const pool = createPool({ connectionString: url, max: 2, applicationName: "safedeploy-cli" });
  try {
    return await work(pool);
  } finally {
    await pool.end();
  }
}

function describe(report: ChainReport): string {
  const bad = report.firstBad;
  if (bad === null) return `audit log intact: ${report.rows} rows, every stream's chain verified\n`;
  return (
    `audit log BROKEN at stream ${bad.stream} seq ${bad.seq} position ${bad.position}: ` +
    `${bad.problem} (${bad.detail}); ${report.rows} rows checked\n`
  );
}

/** `safedeploy audit verify [--stream S] [--json]`: 0 intact, 1 broken, 2 usage. */
export const audit: Command = {
  name: "audit",
  summary: "verify the hash chain of the audit log (exit 0 intact, 1 broken)",
  usage: `Usage: safedeploy audit verify [--stream STREAM] [--json]

Walks the hash chain of every stream of the audit log (in PostgreSQL at $DATABASE_URL) in
position order and names the first row that breaks it: its stream, sequence, chain position and
whether it was edited, is preceded by missing rows, or was reordered.
Exit 0 intact, 1 broken, 2 usage error (including DATABASE_URL not set).

Options:
  --stream STREAM  verify one stream only (METRICS, BUDGET, INCIDENTS, GOVERNANCE, DEADLETTER)
  --json           print {"intact", "rows", "firstBad": {stream, seq, position, problem, detail} | null}`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        stream: { type: "string" },
      },
    });
    if (positionals[0] !== "verify") {
      throw new UsageError(
        positionals[0] === undefined
          ? "audit needs a subcommand: verify"
          : `unknown subcommand "${positionals[0]}"`,
      );
    }
    if (positionals.length > 1) throw new UsageError("audit verify takes no arguments");
    const url = databaseUrlOf(io);
    const report = await withDatabase(url, (pool) =>
      verifyChain(pool, values.stream === undefined ? {} : { stream: values.stream }),
    );
    if (values.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
    else if (report.intact) io.stdout(describe(report));
    else io.stderr(describe(report));
    return report.intact ? EXIT.ok : EXIT.negative;
  },
};
