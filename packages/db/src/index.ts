/**
 * @packageDocumentation
 * PostgreSQL for SafeDeploy: a pool that survives server restarts, a readiness check,
 * forward-only migrations under an advisory lock, transactions with bounded retry, typed queries
 * and error classification (retryable or terminal).
 *
 * Service stores are repositories: plain objects of functions whose first argument is a
 * {@link Queryable}, so they run on the pool or inside {@link withTransaction} alike. Writes are
 * idempotent on a unique key derived from the cause (`ON CONFLICT DO NOTHING`). See the README.
 */
export {
  DatabaseUnavailableError,
  MigrationError,
  errorCode,
  isRetryableDbError,
  isUniqueViolation,
} from "./errors.js";
export { loadMigrations, migrate, migrationChecksum } from "./migrate.js";
export type { MigrateOptions, Migration, MigrationReport } from "./migrate.js";
export { checkDatabase, createPool } from "./pool.js";
export type { CheckOptions, DbLogger, PoolOptions } from "./pool.js";
export { query } from "./query.js";
export type { Queryable, RowParser } from "./query.js";
export { withTransaction } from "./transaction.js";
export type { IsolationLevel, TransactionOptions } from "./transaction.js";
