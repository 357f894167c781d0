import type { CommandError } from "@safedeploy/schema";
import { z } from "zod";

/** The error codes of the HTTP API, each with its status. */
export const API_ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;
export type ApiErrorCode = keyof typeof API_ERROR_STATUS;

/** The body of every error answer (CONTRACT.md, "Errors"). */
export const ErrorBody = z
  .object({
    error: z.enum(Object.keys(API_ERROR_STATUS) as [ApiErrorCode, ...ApiErrorCode[]]),
    message: z.string(),
    details: z.array(z.unknown()),
  })
  .meta({ id: "Error" });
export type ErrorBody = z.infer<typeof ErrorBody>;

/** A refusal the error handler turns into `{ error, message, details }` with its status. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly code: ApiErrorCode;
  readonly details: readonly unknown[];
  constructor(
    code: ApiErrorCode,
    message: string,
    details: readonly unknown[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return API_ERROR_STATUS[this.code];
  }
}

/** A command refused by its owning service, as an API error (`internal` keeps its message). */
export function commandFailure(error: CommandError): ApiError {
  const code: ApiErrorCode = error.code === "invalid_request" ? "invalid_request" : error.code;
  return new ApiError(code, error.message, error.details ?? []);
}

/** The standard answers of an authenticated route, for its schema and the OpenAPI document. */
export const ERROR_RESPONSES = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  429: ErrorBody,
  500: ErrorBody,
  503: ErrorBody,
} as const;
