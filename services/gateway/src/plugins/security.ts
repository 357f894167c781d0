import helmet from "@fastify/helmet";
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance } from "fastify";
import { ApiError } from "../errors.js";
import type { TokenStore } from "../tokens.js";
import { bearerToken } from "./auth.js";

/**
 * Security headers (a CSP allowing the dashboard's and the docs page's own scripts and styles, no
 * inline scripts) and a rate limit per token name, or per address for requests without a known
 * token. Health, readiness and metrics are never limited.
 */
export async function secure(
  app: FastifyInstance,
  options: { readonly tokens: TokenStore | null; readonly perMinute: number },
): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // swagger-ui sets inline styles on its elements.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        fontSrc: ["'self'", "data:"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
      },
    },
  });
  await app.register(rateLimit, {
    max: options.perMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => {
      const token = bearerToken(request);
      const principal = token === null ? null : (options.tokens?.authenticate(token) ?? null);
      return principal === null ? `ip:${request.ip}` : `token:${principal.name}`;
    },
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        "rate_limited",
        `rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`,
      ),
  });
}
