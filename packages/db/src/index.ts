/**
 * @packageDocumentation
 * PostgreSQL for SafeDeploy: a pool that survives server restarts, forward-only migrations under
 * an advisory lock, transactions, and error classification. Repositories are plain objects of
 * functions taking a {@link Queryable}, so they run on the pool or inside a transaction alike.
 */
export { isRetryableDbError, isUniqueViolation } from "./errors.js";
export { MigrationError, loadMigrations, migrate } from "./migrate.js";
export type { Migration, MigrationReport } from "./migrate.js";
export { checkDatabase, createPool, query } from "./pool.js";
export type { DbLogger, PoolOptions, Queryable } from "./pool.js";
export { withTransaction } from "./transaction.js";
export type { IsolationLevel } from "./transaction.js";
