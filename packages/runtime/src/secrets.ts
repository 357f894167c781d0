// Every pattern is bounded ({m,n}) so that scanning a long log line stays linear.
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]{0,31}:\/\/)([^\s:@/"'\\]{0,256}):([^\s/"'\\]{1,512})@/gi;
const URL_TOKEN_USER = /\b((?:nats|tls|wss?):\/\/)([^\s:@/"'\\]{1,512})@/gi;
const KEY_VALUE_PASSWORD = /\b(password|passwd|pwd)=([^\s&;"'\\]{1,512})/gi;
const AUTHORIZATION_VALUE = /\b(Bearer|Basic)\s+[\w.~+/=-]{1,2048}/g;
const GITHUB_TOKEN_VALUE = /\b(gh[pousr]_|github_pat_)\w{1,255}/g;

/** NATS accepts a bare token as the URL's user name, so there the user name is a secret too. */
const TOKEN_USER_PROTOCOLS = new Set(["nats:", "tls:", "ws:", "wss:"]);
const PASSWORD_PARAMETERS = ["password", "passwd", "pwd"];

/**
 * Masks credentials wherever they sit in free text: URL passwords (`postgres://app:***@db`), NATS
 * tokens given as URL user (`nats://***@host`), `password=` pairs of connection strings,
 * `Bearer`/`Basic` values and GitHub tokens (`ghp_***`). The logger runs every line through it and
 * the readiness endpoint every error message, so a secret echoed by a dependency's error never
 * reaches a log or an HTTP answer.
 */
export function redactCredentials(text: string): string {
  return text
    .replace(URL_PASSWORD, "$1$2:***@")
    .replace(URL_TOKEN_USER, "$1***@")
    .replace(KEY_VALUE_PASSWORD, "$1=***")
    .replace(AUTHORIZATION_VALUE, "$1 ***")
    .replace(GITHUB_TOKEN_VALUE, "$1***");
}

/**
 * Masks the credentials of a connection URL (password, NATS token, `password` query parameter),
 * keeping the rest readable; text that is not a URL goes through {@link redactCredentials}.
 */
export function redactUrl(text: string): string {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return redactCredentials(text);
  }
  let changed = false;
  if (parsed.password !== "") {
    parsed.password = "***";
    changed = true;
  } else if (parsed.username !== "" && TOKEN_USER_PROTOCOLS.has(parsed.protocol)) {
    parsed.username = "***";
    changed = true;
  }
  for (const name of PASSWORD_PARAMETERS) {
    if (parsed.searchParams.has(name)) {
      parsed.searchParams.set(name, "***");
      changed = true;
    }
  }
  // Unchanged URLs are returned as written: URL#toString would normalise them (trailing slash).
  return changed ? parsed.toString() : text;
}
