import { parseArgs } from "node:util";
import { verifyChain } from "@safedeploy/audit";
import type { ChainReport, StreamAnchor } from "@safedeploy/audit";
import { createPool } from "@safedeploy/db";
import { auditAnchors } from "@safedeploy/jetstream";
import { connectFromEnv } from "../bus.js";
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

/** How long to wait for NATS before saying the tail cannot be anchored. */
const ANCHOR_TIMEOUT_MS = 5_000;

/**
 * The audit durables' ack floors and the chain heads anchored in JetStream KV, from the NATS at
 * `NATS_URL`, in the configured namespace.
 */
async function readAnchors(io: CliIo): Promise<readonly StreamAnchor[]> {
  const bus = await connectFromEnv(io, "safedeploy-audit-verify", {
    timeoutMs: ANCHOR_TIMEOUT_MS,
  });
  try {
    return await auditAnchors(bus);
  } finally {
    await bus.close();
  }
}

function describe(report: ChainReport, anchors: readonly StreamAnchor[]): string {
  const bad = report.firstBad;
  if (bad === null) {
    const tail =
      report.anchored.length === 0
        ? "tails not anchored (no NATS asked)"
        : `tails of ${report.anchored.join(", ")} checked against JetStream`;
    const headAnchored = anchors
      .filter((a) => a.head !== undefined && report.anchored.includes(a.stream))
      .map((a) => a.stream)
      .sort();
    const heads =
      report.anchored.length === 0
        ? ""
        : headAnchored.length === 0
          ? "; no chain head anchored yet"
          : `; heads of ${headAnchored.join(", ")} match their anchored hashes`;
    return `audit log intact: ${report.rows} rows, every stream's chain verified; ${tail}${heads}\n`;
  }
  return (
    `audit log BROKEN at stream ${bad.stream} seq ${bad.seq} position ${bad.position}: ` +
    `${bad.problem} (${bad.detail}); ${report.rows} rows checked\n`
  );
}

/** `safedeploy audit verify [--stream S] [--json]`: 0 intact, 1 broken, 2 usage. */
export const audit: Command = {
  name: "audit",
  summary: "verify the hash chain of the audit log (exit 0 intact, 1 broken)",
  usage: `Usage: safedeploy audit verify [--stream STREAM] [--anchor | --no-anchor] [--json]

Walks the hash chain of every stream of the audit log (in PostgreSQL at $DATABASE_URL) in
position order and names the first row that breaks it: its stream, sequence, chain position and
whether it was edited, is preceded by missing rows, or was reordered. A chain alone cannot show
that its newest rows were cut off, nor that a stream was rewritten with recomputed hashes:
anchored, each stream's tail is also checked against what the audit service acknowledged in
JetStream ($NATS_URL), and a missing tail is named (truncated), and the row at each stream's
anchored chain head (position and hash the audit service wrote to the KV bucket audit-anchors
after each committed batch) must still carry that hash, else the rewrite is named (edited).
Exit 0 intact, 1 broken (or the anchor could not be read), 2 usage error (including
DATABASE_URL not set).

Options:
  --stream STREAM  verify one stream only (METRICS, BUDGET, INCIDENTS, GOVERNANCE, DEADLETTER)
  --anchor         check the tails against JetStream (the default when NATS_URL is set)
  --no-anchor      check the chains only
  --json           print {"intact", "rows", "firstBad": {stream, seq, position, problem, detail}
                   | null, "anchored": [streams checked against their anchors]}`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      allowNegative: true,
      options: {
        json: { type: "boolean", default: false },
        stream: { type: "string" },
        anchor: { type: "boolean" },
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
    let anchors: readonly StreamAnchor[] = [];
    if (values.anchor ?? (io.env.NATS_URL !== undefined && io.env.NATS_URL !== "")) {
      try {
        anchors = await readAnchors(io);
      } catch (error) {
        io.stderr(
          `cannot anchor the audit log's tail: NATS unreachable (${error instanceof Error ? error.message : String(error)}); --no-anchor checks the chains only\n`,
        );
        return EXIT.negative;
      }
    }
    const report = await withDatabase(url, (pool) =>
      verifyChain(pool, {
        ...(values.stream === undefined ? {} : { stream: values.stream }),
        anchors,
      }),
    );
    if (values.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
    else if (report.intact) io.stdout(describe(report, anchors));
    else io.stderr(describe(report, anchors));
    return report.intact ? EXIT.ok : EXIT.negative;
  },
};
