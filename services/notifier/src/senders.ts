import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import {
  linksOf,
  postOnce,
  slackMessage,
  standardWebhookHeaders,
  webhookBody,
  webhookKey,
} from "@safedeploy/notify";
import type { Fetch } from "@safedeploy/notify";
import { ConfigError } from "@safedeploy/runtime";
import { parseDuration } from "@safedeploy/schema";
import type { NotifierDocument } from "@safedeploy/schema";
import type { Sender } from "./deps.js";

interface SenderOptions {
  readonly publicUrl: string;
  readonly secretsDir?: string;
  readonly fetch: Fetch;
  /** Milliseconds since the epoch: the `webhook-timestamp` of each attempt. */
  readonly now: () => number;
}

/** Reads one notifier's secret file; the problem names the notifier and field, never the secret. */
async function readSecret(
  name: string,
  field: string,
  path: string,
  dir: string | undefined,
): Promise<string> {
  const file = isAbsolute(path) ? path : resolve(dir ?? process.cwd(), path);
  try {
    // The operator names this file in the catalog; reading it is the point.
    // eslint-disable-next-line security/detect-non-literal-fs-filename
    const text = (await readFile(file, "utf8")).trim();
    if (text !== "") return text;
  } catch {
    // Reported below, without the error (it may quote the path's contents on some systems).
  }
  throw new ConfigError([
    { variable: `Notifier ${name} spec.${field}`, message: `${file} cannot be read or is empty` },
  ]);
}

async function webhookSender(document: NotifierDocument, options: SenderOptions): Promise<Sender> {
  const { name } = document.metadata;
  const spec = document.spec;
  const secret = await readSecret(name, "secretFile", spec.secretFile ?? "", options.secretsDir);
  try {
    webhookKey(secret);
  } catch {
    throw new ConfigError([
      { variable: `Notifier ${name} spec.secretFile`, message: "must hold whsec_ + base64" },
    ]);
  }
  const url = spec.url ?? "";
  const timeoutMs = parseDuration(spec.timeout) ?? 15_000;
  return {
    name,
    spec,
    send: (notification, id) => {
      const body = webhookBody(notification, linksOf(notification, options.publicUrl));
      const timestamp = Math.floor(options.now() / 1000);
      const headers = standardWebhookHeaders(secret, id, timestamp, body);
      return postOnce(options.fetch, url, { headers, body, timeoutMs });
    },
  };
}

async function slackSender(document: NotifierDocument, options: SenderOptions): Promise<Sender> {
  const { name } = document.metadata;
  const spec = document.spec;
  const url = await readSecret(name, "urlFile", spec.urlFile ?? "", options.secretsDir);
  if (!/^https?:\/\/\S+$/.test(url)) {
    throw new ConfigError([
      { variable: `Notifier ${name} spec.urlFile`, message: "must hold an http(s) URL" },
    ]);
  }
  const timeoutMs = parseDuration(spec.timeout) ?? 15_000;
  return {
    name,
    spec,
    send: (notification) => {
      const body = JSON.stringify(
        slackMessage(notification, linksOf(notification, options.publicUrl)),
      );
      return postOnce(options.fetch, url, { headers: {}, body, timeoutMs });
    },
  };
}

/** The catalog's notifiers with their secrets read: a missing or bad secret fails the start. */
export async function loadSenders(
  notifiers: readonly NotifierDocument[],
  options: SenderOptions,
): Promise<Sender[]> {
  return Promise.all(
    notifiers.map((document) =>
      document.spec.type === "webhook"
        ? webhookSender(document, options)
        : slackSender(document, options),
    ),
  );
}
