import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { z } from "zod";

/** API roles, each allowed what the ones before it are. */
export const ROLES = ["viewer", "approver", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** Whether `held` is at least `needed`. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** Who a bearer token belongs to: its name is the actor of every command it sends. */
export interface Principal {
  readonly name: string;
  readonly role: Role;
}

/** Resolves bearer tokens; knows only their hashes. */
export interface TokenStore {
  /** The principal of `token`, or null when no entry matches. */
  authenticate(token: string): Principal | null;
}

const TokenEntry = z.strictObject({
  name: z.string().trim().min(1, { message: "a name is required" }).max(200),
  role: z.enum(ROLES, { message: `must be one of ${ROLES.join(", ")}` }),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, { message: "must be the hex SHA-256 of the token (64 digits)" }),
});
const TokenFile = z.array(TokenEntry);

/** The tokens file is unreadable or invalid; the message names the entry and the field. */
export class TokenFileError extends Error {
  override readonly name = "TokenFileError";
}

/** The hex SHA-256 of a token, as the tokens file stores it. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

function describeEntry(raw: unknown, index: number): string {
  if (typeof raw === "object" && raw !== null && "name" in raw && typeof raw.name === "string") {
    return `entry ${index + 1} (${raw.name})`;
  }
  return `entry ${index + 1}`;
}

/**
 * Parses the YAML text of a tokens file: a list of `{name, role, sha256}`. Throws
 * {@link TokenFileError} naming every bad entry and field, never quoting a hash.
 */
export function parseTokens(text: string, file = "tokens file"): TokenStore {
  let document: unknown;
  try {
    document = parse(text) as unknown;
  } catch (error) {
    throw new TokenFileError(
      `${file} is not YAML: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const parsed = TokenFile.safeParse(document ?? []);
  if (!parsed.success) {
    const list = Array.isArray(document) ? (document as unknown[]) : [];
    const problems = parsed.error.issues.map((issue) => {
      const [index, field] = issue.path;
      if (typeof index !== "number") return `  ${issue.message} (a list of {name, role, sha256})`;
      const where = describeEntry(list[index], index);
      return `  ${where}${field === undefined ? "" : ` field ${String(field)}`}: ${issue.message}`;
    });
    throw new TokenFileError(`${file} is invalid:\n${problems.join("\n")}`);
  }
  const names = new Set<string>();
  for (const entry of parsed.data) {
    if (names.has(entry.name)) {
      throw new TokenFileError(`${file} is invalid:\n  name ${entry.name} appears twice`);
    }
    names.add(entry.name);
  }
  return tokenStore(
    parsed.data.map((entry) => ({
      name: entry.name,
      role: entry.role,
      sha256: entry.sha256.toLowerCase(),
    })),
  );
}

/** Reads and parses the tokens file at `path`. */
export async function loadTokens(path: string): Promise<TokenStore> {
  let text: string;
  try {
    // The operator names this file (SAFEDEPLOY_TOKENS); reading it is the point.
    // eslint-disable-next-line security/detect-non-literal-fs-filename
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw new TokenFileError(`tokens file ${path} cannot be read (${code})`);
  }
  return parseTokens(text, `tokens file ${path}`);
}

/**
 * A store over `{name, role, sha256}` entries. The presented token's hash is compared with every
 * entry in constant time, so neither the outcome nor the matching entry shows in the timing.
 */
export function tokenStore(
  entries: readonly { name: string; role: Role; sha256: string }[],
): TokenStore {
  const digests = entries.map((entry) => ({
    principal: { name: entry.name, role: entry.role },
    digest: Buffer.from(entry.sha256, "hex"),
  }));
  return {
    authenticate(token) {
      const presented = createHash("sha256").update(token, "utf8").digest();
      let found: Principal | null = null;
      for (const { principal, digest } of digests) {
        if (timingSafeEqual(presented, digest) && found === null) found = principal;
      }
      return found;
    },
  };
}
