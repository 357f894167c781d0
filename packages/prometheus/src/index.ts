/**
 * @packageDocumentation
 * A client for the Prometheus HTTP API (and compatible servers): instant and range queries,
 * validated responses, timeouts, bounded retries with jitter and a concurrency limit.
 */
export { ApiResponse, QueryData, sampleValue } from "./api.js";
export { createPrometheusClient } from "./client.js";
export type { PrometheusClient, PrometheusClientOptions, QueryResult, Sample } from "./client.js";
export { PrometheusError } from "./errors.js";
