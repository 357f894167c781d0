import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_NAMESPACE, natsPermissionsConfig } from "@safedeploy/schema";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";

const TOKEN = /^[a-z][a-z0-9_-]*$/;
const PREFIX = /^[A-Za-z0-9_-]*$/;

/** `safedeploy generate nats-permissions [--out FILE]`: the NATS users of deploy/nats. */
export const generate: Command = {
  name: "generate",
  summary: "generate deployment artefacts (nats-permissions: the NATS server users)",
  usage: `Usage: safedeploy generate nats-permissions [--out FILE] [--root TOKEN] [--prefix PREFIX]

Prints the nats-server configuration with one user per service, each allowed only
its own subjects, consumers, KV buckets and commands (deploy/nats/permissions.conf is
this output, committed). Passwords are references to $SAFEDEPLOY_NATS_<SERVICE>_PASSWORD
in the server's environment; the file holds no secret. --out writes FILE instead of
stdout. --root and --prefix name the subject root and the stream/consumer/bucket prefix
(default sd and none, as SAFEDEPLOY_SUBJECT_ROOT and SAFEDEPLOY_STREAM_PREFIX).`,
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        out: { type: "string" },
        root: { type: "string", default: DEFAULT_NAMESPACE.root },
        prefix: { type: "string", default: DEFAULT_NAMESPACE.prefix },
      },
    });
    const [artefact, ...rest] = positionals;
    if (artefact !== "nats-permissions" || rest.length > 0) {
      throw new UsageError("usage: safedeploy generate nats-permissions [--out FILE]");
    }
    if (!TOKEN.test(values.root))
      throw new UsageError("--root must be one lowercase subject token");
    if (!PREFIX.test(values.prefix))
      throw new UsageError("--prefix must be letters, digits, _ or -");
    const config = natsPermissionsConfig({ root: values.root, prefix: values.prefix });
    if (values.out === undefined) {
      io.stdout(config);
    } else {
      const path = io.cwd === undefined ? values.out : resolve(io.cwd, values.out);
      await writeFile(path, config);
      io.stderr(`wrote ${values.out}\n`);
    }
    return EXIT.ok;
  },
};
