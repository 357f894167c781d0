import { parseArgs } from "node:util";
import { STREAMS } from "@safedeploy/schema";
import { z } from "zod";
import { StoredDeadLetter, apiPath, listOf, printAnswer, withApi } from "../api.js";
import { enumOption } from "../args.js";
import { UsageError } from "../io.js";
import type { Command } from "../io.js";
import { formatTable, shortTime } from "../table.js";

const USAGE = `Usage: safedeploy deadletters [--stream STREAM] [--limit N] [--json]

Messages the services could not handle, newest first, from the control plane at
$SAFEDEPLOY_API (default http://127.0.0.1:8080, token $SAFEDEPLOY_TOKEN): when, the
stream and consumer, how many deliveries, and why (invalid, terminal, or retried out).
Nothing acted on them; each keeps its original subject, headers and payload (--json).
STREAM is one of ${STREAMS.join(", ")}: only letters consumed from it.
Exit 0, 1 when the API cannot be reached or refuses (message shown), 2 usage error.

Options:
  --stream STREAM  only dead letters of messages consumed from STREAM
  --limit N        at most N (1-500, default 50)
  --json           print the API's JSON answer`;

/** One row per dead letter: seq, when, stream/consumer, kind, deliveries, reason. */
export function deadLettersTable(items: readonly StoredDeadLetter[]): string {
  if (items.length === 0) return "no dead letters\n";
  return formatTable(
    ["SEQ", "AT", "FROM", "KIND", "DELIVERIES", "REASON"],
    items.map(({ seq, storedAt, letter }) =>
      letter === null
        ? [
            String(seq),
            shortTime(storedAt),
            "-",
            "-",
            "-",
            "not a dead letter (published there by hand?)",
          ]
        : [
            String(seq),
            shortTime(letter.at),
            `${letter.stream}/${letter.consumer}`,
            letter.kind,
            String(letter.deliveryCount),
            letter.reason,
          ],
    ),
  );
}

/** `safedeploy deadletters`. */
export const deadletters: Command = {
  name: "deadletters",
  summary: "list messages the services could not handle, with why",
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        stream: { type: "string" },
        limit: { type: "string" },
      },
    });
    if (positionals.length > 0) throw new UsageError("deadletters takes no arguments");
    const stream = enumOption(values.stream, z.enum(STREAMS), "stream");
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 500)) {
      throw new UsageError(
        `--limit takes a whole number from 1 to 500, not ${JSON.stringify(values.limit)}`,
      );
    }
    const query = { stream, limit: limit === undefined ? undefined : String(limit) };
    return withApi("deadletters", io, async (api) => {
      const answer = await api.get(apiPath(["deadletters"], query), listOf(StoredDeadLetter));
      return printAnswer(io, answer, values.json, (page) => deadLettersTable(page.items));
    });
  },
};
