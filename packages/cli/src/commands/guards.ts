import { parseArgs } from "node:util";
import { ResourceName } from "@safedeploy/schema";
import { z } from "zod";
import { Guard, apiPath, listOf, printAnswer, withApi } from "../api.js";
import { onlyOptions, serviceOption } from "../args.js";
import { UsageError } from "../io.js";
import type { Command } from "../io.js";
import { guardsTable } from "./snapshot.js";

const USAGE = `Usage: safedeploy guards list [--service SERVICE] [--all] [--json]
       safedeploy guards clear SERVICE --reason TEXT [--json]

Failed release-train guards of the control plane at $SAFEDEPLOY_API (default
http://127.0.0.1:8080, token $SAFEDEPLOY_TOKEN). When a train step fails a fatal check, an
error regression or a follow-up, its service's gate blocks (release-guard-failed) until the
service's revert is executed or an approver clears the guard here, after triage.
  list   the guards blocking services now (--all: cleared ones too), newest first
  clear  clear every guard of SERVICE (needs an approver token; recorded with its name)
Exit 0, 1 when the API cannot be reached or refuses (message shown), 2 usage error.

Options:
  --service SERVICE  list: only this service's guards
  --all              list: cleared guards too
  --reason TEXT      clear: why (required)
  --json             print the API's JSON answer`;

const Cleared = z.object({ cleared: z.array(Guard) });

/** `safedeploy guards list|clear`. */
export const guards: Command = {
  name: "guards",
  summary: "failed release guards that block a service's gate (list | clear SERVICE)",
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        service: { type: "string" },
        all: { type: "boolean", default: false },
        reason: { type: "string" },
      },
    });
    const [sub, ...rest] = positionals;
    const onlyFor = (allowed: readonly string[]) => {
      onlyOptions(`guards ${sub ?? ""}`, values, allowed);
    };
    switch (sub) {
      case "list": {
        onlyFor(["service", "all"]);
        if (rest.length > 0) throw new UsageError("guards list takes no arguments");
        const query = {
          service: serviceOption(values.service),
          all: values.all ? "true" : undefined,
        };
        return withApi("guards", io, async (api) => {
          const answer = await api.get(apiPath(["guards"], query), listOf(Guard));
          return printAnswer(io, answer, values.json, (page) => guardsTable(page.items));
        });
      }
      case "clear": {
        onlyFor(["reason"]);
        const [service, ...extra] = rest;
        if (service === undefined) throw new UsageError("guards clear needs a SERVICE");
        if (extra.length > 0) throw new UsageError("guards clear takes one SERVICE");
        if (!ResourceName.safeParse(service).success) {
          throw new UsageError(`not a service name: ${JSON.stringify(service)}`);
        }
        const reason = values.reason?.trim();
        if (reason === undefined || reason === "") {
          throw new UsageError("guards clear needs --reason TEXT");
        }
        return withApi("guards", io, async (api) => {
          const answer = await api.post(apiPath(["guards", service, "clear"]), { reason }, Cleared);
          return printAnswer(io, answer, values.json, ({ cleared }) =>
            cleared.length === 0
              ? `${service} had no failed release guard to clear\n`
              : `cleared ${cleared.length} guard(s) of ${service}: ${cleared.map((g) => g.id).join(", ")}\n`,
          );
        });
      }
      case undefined:
        throw new UsageError("guards needs a subcommand: list or clear");
      default:
        throw new UsageError(`unknown subcommand "${sub}"`);
    }
  },
};
