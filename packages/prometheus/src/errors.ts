/** A query failed. `retryable` separates an outage (retry later) from a bad query (fix the catalog). */
export class PrometheusError extends Error {
  override readonly name = "PrometheusError";
  /** Prometheus' `errorType` (`bad_data`, `timeout`, `execution`, …), or `network`/`http`. */
  readonly errorType: string;
  readonly retryable: boolean;
  readonly status: number | undefined;
  constructor(
    message: string,
    details: { errorType: string; retryable: boolean; status?: number; cause?: unknown },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.errorType = details.errorType;
    this.retryable = details.retryable;
    this.status = details.status;
  }
}
