import { parseArgs } from "node:util";
import { z } from "zod";
import { IncidentState } from "@safedeploy/schema";
import { Incident, apiPath, listOf, printAnswer, withApi } from "../api.js";
import { enumOption, idArgument, onlyOptions, serviceOption } from "../args.js";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";
import { formatTable, shortTime } from "../table.js";
import { incidentsTable } from "./snapshot.js";

/** The part of `GET /v1/incidents/{id}/deploy` the CLI shows. */
const IncidentDeploy = z.object({ summary: z.string().nullable() });

/** The transitions, led by the opening when the API lists only the moves after it. */
function timelineOf(incident: Incident): Incident["transitions"] {
  if (incident.transitions.some((t) => t.from === null)) return incident.transitions;
  const reason = (incident as Record<string, unknown>).reason;
  const opened = {
    from: null,
    to: "detected" as const,
    at: incident.openedAt,
    actor: "system",
    reason: typeof reason === "string" ? reason : "opened",
  };
  return [opened, ...incident.transitions];
}

/** The incident's header lines and its timeline of transitions. */
export function describeIncident(incident: Incident): string {
  const extra = incident as Record<string, unknown>;
  const lines = [
    `${incident.id}  ${incident.service}  ${incident.state}`,
    `  severity ${incident.severity}, class ${incident.class}` +
      (typeof extra.slo === "string" ? `, SLO ${extra.slo}` : ""),
    `  opened ${shortTime(incident.openedAt)}, updated ${shortTime(incident.updatedAt)}`,
  ];
  if (typeof extra.reason === "string" && extra.reason !== "") lines.push(`  ${extra.reason}`);
  const timeline = formatTable(
    ["AT", "FROM", "TO", "BY", "REASON", "LINK"],
    timelineOf(incident).map((t) => [shortTime(t.at), t.from, t.to, t.actor, t.reason, t.link]),
  );
  return `${lines.join("\n")}\n\nTimeline\n${timeline}`;
}

const USAGE = `Usage: safedeploy incidents list [--service SERVICE] [--state STATE] [--json]
       safedeploy incidents show ID [--json]
       safedeploy incidents transition ID STATE --reason TEXT [--link URL] [--json]

Incidents of the control plane at $SAFEDEPLOY_API (default http://127.0.0.1:8080, token
$SAFEDEPLOY_TOKEN).
  list        incidents, newest first, optionally of one service and/or in one state
  show        one incident with its timeline of transitions
  transition  move an incident to STATE (needs an approver token); the API refuses an
              illegal transition (409) and the CLI prints why
STATE is one of ${IncidentState.options.join(", ")}.
Exit 0, 1 when the API cannot be reached or refuses (message shown), 2 usage error.

Options:
  --service SERVICE  list: only this service's incidents
  --state STATE      list: only incidents in this state
  --reason TEXT      transition: why (required, recorded with your token's name)
  --link URL         transition: a link to record with it (postmortem, ticket, chat)
  --json             print the API's JSON answer`;

/** `safedeploy incidents list|show|transition`. */
export const incidents: Command = {
  name: "incidents",
  summary: "list, show and transition incidents (list | show ID | transition ID STATE)",
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        service: { type: "string" },
        state: { type: "string" },
        reason: { type: "string" },
        link: { type: "string" },
      },
    });
    const [sub, ...rest] = positionals;
    const onlyFor = (allowed: readonly string[]) => {
      onlyOptions(`incidents ${sub ?? ""}`, values, allowed);
    };
    const stateOption = (value: string | undefined) =>
      enumOption(value, IncidentState, "incident state");
    switch (sub) {
      case "list": {
        onlyFor(["service", "state"]);
        if (rest.length > 0) throw new UsageError("incidents list takes no arguments");
        const filter = { service: serviceOption(values.service), state: stateOption(values.state) };
        return withApi("incidents", io, async (api) => {
          const answer = await api.get(apiPath(["incidents"], filter), listOf(Incident));
          return printAnswer(io, answer, values.json, (page) => incidentsTable(page.items));
        });
      }
      case "show": {
        onlyFor([]);
        const id = idArgument(rest[0], "an incident ID", "incidents show");
        if (rest.length > 1) throw new UsageError("incidents show takes one ID");
        return withApi("incidents", io, async (api) => {
          const answer = await api.get(apiPath(["incidents", id]), Incident);
          if (values.json) return printAnswer(io, answer, true, describeIncident);
          // What was deployed when the burn began, when deploy events say (else nothing more).
          const deploy = await api
            .get(apiPath(["incidents", id, "deploy"]), IncidentDeploy)
            .then((found) => found.value.summary)
            .catch(() => null);
          const described = describeIncident(answer.value);
          io.stdout(deploy === null ? described : `${described}\ndeploy: ${deploy}`);
          return EXIT.ok;
        });
      }
      case "transition": {
        onlyFor(["reason", "link"]);
        const id = idArgument(rest[0], "an incident ID", "incidents transition");
        if (rest[1] === undefined) throw new UsageError("incidents transition needs a STATE");
        const to = stateOption(rest[1]);
        if (rest.length > 2) throw new UsageError("incidents transition takes ID and STATE");
        const reason = values.reason?.trim();
        if (reason === undefined || reason === "") {
          throw new UsageError("incidents transition needs --reason TEXT");
        }
        if (values.link !== undefined && !URL.canParse(values.link)) {
          throw new UsageError(`--link is not a URL: ${JSON.stringify(values.link)}`);
        }
        const body = { to, reason, ...(values.link === undefined ? {} : { link: values.link }) };
        return withApi("incidents", io, async (api) => {
          const answer = await api.post(apiPath(["incidents", id, "transitions"]), body, Incident);
          return printAnswer(io, answer, values.json, (i) => `${id} is now ${i.state}\n`);
        });
      }
      case undefined:
        throw new UsageError("incidents needs a subcommand: list, show or transition");
      default:
        throw new UsageError(`unknown subcommand "${sub}"`);
    }
  },
};
