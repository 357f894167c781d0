import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "../errors.js";
import { roleAllows } from "../tokens.js";
import type { Principal, Role, TokenStore } from "../tokens.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The least role a route needs; routes without one need no token. */
    role?: Role;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** The bearer token of a request: the Authorization header, or `access_token` where allowed. */
export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header === "string") {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1] ?? null;
  }
  // EventSource cannot set headers: /v1/events also takes the token as a query parameter.
  if (request.routeOptions.url === "/v1/events") {
    const query = request.query as { access_token?: unknown } | undefined;
    if (typeof query?.access_token === "string" && query.access_token !== "") {
      return query.access_token;
    }
  }
  return null;
}

/** Who sent a request on an authenticated route. */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new ApiError("unauthorized", "a bearer token is required");
  return request.principal;
}

/**
 * Requires a token on every route of `scope` that names a role: 401 without one or with an
 * unknown one (always, when no tokens file is configured), 403 when its role is too low.
 */
export function requireTokens(scope: FastifyInstance, tokens: TokenStore | null): void {
  scope.decorateRequest("principal", null);
  scope.addHook("preValidation", (request, _reply, done) => {
    try {
      request.principal = authorize(request, tokens);
      done();
    } catch (error) {
      done(error as ApiError);
    }
  });
}

function authorize(request: FastifyRequest, tokens: TokenStore | null): Principal | null {
  const needed = request.routeOptions.config.role;
  if (needed === undefined) return null;
  if (tokens === null) {
    throw new ApiError(
      "unauthorized",
      "no API tokens are configured (SAFEDEPLOY_TOKENS): the API refuses all but health",
    );
  }
  const token = bearerToken(request);
  // Whether a token was sent at all; the token itself is compared in constant time by the store.
  // eslint-disable-next-line security/detect-possible-timing-attacks
  if (token === null) {
    throw new ApiError("unauthorized", "a bearer token is required (Authorization: Bearer …)");
  }
  const principal = tokens.authenticate(token);
  if (principal === null) throw new ApiError("unauthorized", "unknown token");
  if (!roleAllows(principal.role, needed)) {
    throw new ApiError(
      "forbidden",
      `${request.method} ${request.routeOptions.url ?? ""} needs the ${needed} role; ${principal.name} is ${principal.role}`,
    );
  }
  return principal;
}
