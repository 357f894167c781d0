import { errorCode, isRetryableDbError } from "@safedeploy/db";
import type { FastifyError, FastifyInstance } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { API_ERROR_STATUS, ApiError } from "../errors.js";
import type { ApiErrorCode, ErrorBody } from "../errors.js";

function codeOfStatus(status: number): ApiErrorCode {
  const found = (Object.entries(API_ERROR_STATUS) as [ApiErrorCode, number][]).find(
    ([, s]) => s === status,
  );
  if (found !== undefined) return found[0];
  return status >= 500 ? "internal" : "invalid_request";
}

/** One invalid field: where (`body`, `querystring`, `params`), its path, and what is wrong. */
interface FieldProblem {
  readonly in: string;
  readonly path: string;
  readonly message: string;
}

function fieldProblems(error: FastifyError): FieldProblem[] {
  const where = error.validationContext ?? "body";
  if (!hasZodFastifySchemaValidationErrors(error)) {
    return (error.validation ?? []).map((v) => ({
      in: where,
      path: v.instancePath.replace(/^\//, "").replaceAll("/", "."),
      message: v.message ?? "invalid",
    }));
  }
  return error.validation.map((v) => ({
    in: where,
    path: v.instancePath.replace(/^\//, "").replaceAll("/", "."),
    message: v.message ?? "invalid",
  }));
}

/** PostgreSQL's query_canceled: here, the gateway's statement timeout ran out. */
const QUERY_CANCELED = "57014";

/**
 * A database failure as an answer: a statement that ran out of time, or a database that is away,
 * is 503 (try again), never 500. Anything else is not the database's doing here.
 */
function databaseUnavailable(error: unknown): ApiError | null {
  if (errorCode(error) === QUERY_CANCELED) {
    return new ApiError(
      "unavailable",
      "the database did not answer in time (statement timeout); try again",
      [],
      { cause: error },
    );
  }
  if (isRetryableDbError(error)) {
    return new ApiError("unavailable", "the database is unavailable; try again", [], {
      cause: error,
    });
  }
  return null;
}

/**
 * Where a request that Fastify refused before validation went wrong: an unparsable or poisoned
 * body (`__proto__`), a body too large, or a content type it does not take.
 */
function requestProblem(error: FastifyError): FieldProblem {
  const code = typeof error.code === "string" ? error.code : "";
  if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || code === "FST_ERR_CTP_INVALID_TYPE") {
    return { in: "headers", path: "content-type", message: error.message };
  }
  if (code.startsWith("FST_ERR_CTP") || error instanceof SyntaxError) {
    return { in: "body", path: "", message: error.message };
  }
  return { in: "request", path: "", message: error.message };
}

/**
 * The one error handler: every failure becomes `{ error, message, details }`. Invalid requests
 * name each field; 5xx answers never carry the cause, which goes to the log instead.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((thrown: FastifyError | ApiError, request, reply) => {
    let status: number;
    let body: ErrorBody;
    const error = databaseUnavailable(thrown) ?? thrown;
    if (error instanceof ApiError) {
      status = error.status;
      body = { error: error.code, message: error.message, details: [...error.details] };
    } else if (error.validation !== undefined) {
      const problems = fieldProblems(error);
      status = 400;
      body = {
        error: "invalid_request",
        message: problems
          .map((p) => `${p.in}${p.path === "" ? "" : `.${p.path}`}: ${p.message}`)
          .join("; "),
        details: problems,
      };
    } else if (
      typeof error.statusCode === "number" &&
      error.statusCode >= 400 &&
      error.statusCode < 500
    ) {
      status = error.statusCode;
      const problem = requestProblem(error);
      body = {
        error: codeOfStatus(status),
        message: `${problem.in}${problem.path === "" ? "" : `.${problem.path}`}: ${error.message}`,
        details: [problem],
      };
    } else {
      status = 500;
      body = { error: "internal", message: "internal error", details: [] };
    }
    if (status >= 500) {
      request.log.error({ err: thrown, route: request.routeOptions.url }, "request failed");
      // The cause stays in the log; the answer says only what kind of failure it was.
      if (error instanceof ApiError && error.code === "unavailable") {
        body = { error: "unavailable", message: error.message, details: [] };
      } else {
        body = { error: body.error, message: "internal error", details: [] };
      }
    }
    return reply.code(status).type("application/json").send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = {
      error: "not_found",
      message: `no route ${request.method} ${request.url.split("?")[0] ?? ""}`,
      details: [],
    };
    return reply.code(404).send(body);
  });
}
