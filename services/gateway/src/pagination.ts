import { ResourceName, Timestamp } from "@safedeploy/schema";
import { z } from "zod";
import { ApiError } from "./errors.js";
import { Identifier } from "./schemas.js";

/** The sort key of one list item: compared position by position. */
export type SortKey = readonly string[];

const CursorKey = z.array(z.string()).min(1).max(4);

/** An opaque cursor naming the last item of a page. */
export function encodeCursor(key: SortKey): string {
  return Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

/** The key inside a cursor, or a 400 naming `cursor`. */
export function decodeCursor(cursor: string): SortKey {
  try {
    return CursorKey.parse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
  } catch {
    throw notOurs();
  }
}

const notOurs = () =>
  new ApiError("invalid_request", "querystring.cursor: not a cursor this API issued", [
    { in: "querystring", path: "cursor", message: "not a cursor this API issued" },
  ]);

/**
 * What the read model needs to fetch one page in SQL: `limit + 1` rows (one more than the page,
 * so {@link paginate} can tell whether there is a next page) after the cursor's key, checked to
 * have `parts` parts, the first of the `first` kind: an instant, a stream sequence, or any name
 * (else a 400 naming `cursor`).
 */
export function keysetOf(
  page: { readonly limit: number; readonly cursor?: string | undefined },
  shape: { readonly parts: number; readonly first: "instant" | "sequence" | "name" },
): { limit: number; after?: SortKey } {
  if (page.cursor === undefined) return { limit: page.limit + 1 };
  const after = decodeCursor(page.cursor);
  if (after.length !== shape.parts) throw notOurs();
  const [head = "", ...rest] = after;
  // What reaches SQL must be what PostgreSQL accepts: an instant it can parse (not merely one
  // Date.parse takes), a sequence within bigint, names and ids without NUL.
  const first = FIRST_PART[shape.first];
  if (!first.safeParse(head).success) throw notOurs();
  if (!rest.every((part) => Identifier.safeParse(part).success)) throw notOurs();
  return { limit: page.limit + 1, after };
}

/** Years PostgreSQL's timestamptz and JavaScript's Date both hold exactly. */
const SaneInstant = Timestamp.refine((text) => {
  const year = new Date(text).getUTCFullYear();
  return year >= 1970 && year <= 9999;
});
const FIRST_PART = {
  instant: SaneInstant,
  // Number(sequence) must stay exact: at most 2^53 - 1, well inside bigint.
  sequence: z
    .string()
    .regex(/^\d{1,20}$/)
    .refine((text) => Number(text) <= Number.MAX_SAFE_INTEGER),
  name: ResourceName,
} as const;

/**
 * One page of `items`, sorted by `keyOf` in `directions` order per key part. The cursor
 * names the last item returned; the next page starts after it even when items were added since.
 * `items` may be the whole list or just the candidates the read model fetched for this page (the
 * first `limit + 1` after the cursor): the page and its cursor come out the same.
 */
export function paginate<T>(
  items: readonly T[],
  keyOf: (item: T) => SortKey,
  directions: readonly ("asc" | "desc")[],
  page: { readonly limit: number; readonly cursor?: string | undefined },
): { items: T[]; next: string | null } {
  // Sorted here, not trusted from the database: its collation may order ids differently.
  let rest = [...items].sort((a, b) => {
    const ka = keyOf(a);
    const kb = keyOf(b);
    if (comesAfter(ka, kb, directions)) return 1;
    return comesAfter(kb, ka, directions) ? -1 : 0;
  });
  if (page.cursor !== undefined) {
    const after = decodeCursor(page.cursor);
    rest = rest.filter((item) => comesAfter(keyOf(item), after, directions));
  }
  const taken = rest.slice(0, page.limit);
  const last = taken.at(-1);
  return {
    items: taken,
    next: rest.length > page.limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}

function comesAfter(
  key: SortKey,
  cursor: SortKey,
  directions: readonly ("asc" | "desc")[],
): boolean {
  for (let i = 0; i < key.length; i++) {
    const a = key[i] ?? "";
    const b = cursor[i] ?? "";
    if (a === b) continue;
    const greater = a > b;
    return directions[i] === "desc" ? !greater : greater;
  }
  return false;
}
