/**
 * @packageDocumentation
 * The checks of a release train against the outside world: health endpoints over HTTP and error
 * rates from Prometheus. Thin: the judging is `@safedeploy/core`'s.
 */
export { probeHealth, runHealthChecks } from "./health.js";
export type { ProbeDeps } from "./health.js";
export { MAX_BODY_BYTES, MAX_REDIRECTS, OutboundRefusedError, fetchBounded } from "./http.js";
export type { BoundedAnswer, BoundedOptions, BoundedRequest } from "./http.js";
export { checkRegression, measureErrors, regressionQueries } from "./regression.js";
export type { ErrorMeasurement, ErrorQueries } from "./regression.js";
