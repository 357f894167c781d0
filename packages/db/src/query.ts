import type { ClientBase, Pool, QueryResultRow } from "pg";

/**
 * Anything a repository function can run a query on: the pool, or a client checked out for a
 * transaction (see {@link withTransaction}). Repositories take this, never a pool, so the same
 * function works alone or as part of a larger transaction.
 */
export type Queryable = Pool | ClientBase;

/** Turns one raw row into a typed value, throwing when it does not fit (e.g. a zod schema's `parse`). */
export type RowParser<Row> = (row: unknown) => Row;

/**
 * Runs one parameterised statement and returns its rows.
 *
 * Without `parse`, rows are typed as `Row` on trust: right for columns this code wrote itself,
 * as declared in its migrations. Where a column holds data that came from outside (a JSON
 * payload, a message body), pass `parse` to validate every row.
 *
 * `pg` returns `bigint`/`numeric` columns as strings and `timestamptz` as `Date`; cast in SQL
 * (`count(*)::int`) or type the row accordingly.
 */
export async function query<Row extends QueryResultRow>(
  db: Queryable,
  text: string,
  params?: readonly unknown[],
): Promise<Row[]>;
export async function query<Row>(
  db: Queryable,
  text: string,
  params: readonly unknown[],
  parse: RowParser<Row>,
): Promise<Row[]>;
export async function query<Row>(
  db: Queryable,
  text: string,
  params: readonly unknown[] = [],
  parse?: RowParser<Row>,
): Promise<Row[]> {
  const result = await db.query<QueryResultRow>(text, [...params]);
  return parse === undefined ? (result.rows as Row[]) : result.rows.map((row) => parse(row));
}
