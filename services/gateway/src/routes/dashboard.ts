import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as dashboard from "@safedeploy/dashboard";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError } from "../errors.js";

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json; charset=utf-8",
  map: "application/json; charset=utf-8",
  woff2: "font/woff2",
};
const ASSET = /^[A-Za-z0-9][\w.-]*\.(html|js|css|svg|png|ico|json|map|woff2)$/;

/**
 * The charting library's files the dashboard loads by bare name, served from the `uplot` package
 * the dashboard depends on (never a CDN), by file name.
 */
const VENDOR_FILES: ReadonlyMap<string, string> = new Map([
  ["uPlot.esm.js", "uplot/dist/uPlot.esm.js"],
  ["uPlot.min.css", "uplot/dist/uPlot.min.css"],
]);

/** The path of a vendor file, resolved from the dashboard package; null when not installed. */
function vendorPath(name: string): string | null {
  const specifier = VENDOR_FILES.get(name);
  const assets = dashboardAssetsDir();
  if (specifier === undefined || assets === null) return null;
  try {
    return createRequire(join(dirname(assets), "package.json")).resolve(specifier);
  } catch {
    return null;
  }
}

/** Shown while `@safedeploy/dashboard` exports no assets. */
const PLACEHOLDER = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SafeDeploy</title></head>
<body><h1>SafeDeploy</h1>
<p>The dashboard is not built into this gateway. The API is under <code>/v1</code>;
its documentation is at <a href="/docs">/docs</a> and <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>
`;

/** The dashboard's asset directory, when `@safedeploy/dashboard` exports one. */
export function dashboardAssetsDir(): string | null {
  const exported: Readonly<Record<string, unknown>> = dashboard;
  const dir = exported.dashboardAssetsDir;
  return typeof dir === "string" && dir !== "" ? dir : null;
}

/**
 * The dashboard's static files at `/` (no token: the page signs in with a token it sends to the
 * API), or a placeholder page when there is no dashboard.
 */
export const dashboardRoutes: FastifyPluginCallbackZod<{ dir: string | null }> = (
  app,
  { dir },
  done,
) => {
  const serve = async (name: string) => {
    const extension = ASSET.exec(name)?.[1];
    if (extension === undefined) throw new ApiError("not_found", `no file ${name}`);
    if (dir === null) {
      if (name === "index.html") return { type: "text/html; charset=utf-8", body: PLACEHOLDER };
      throw new ApiError("not_found", `no file ${name}`);
    }
    try {
      // `name` is a bare file name (ASSET allows no separators), so it stays inside `dir`; a
      // vendor file's path comes from VENDOR_FILES, never from the request.
      // eslint-disable-next-line security/detect-non-literal-fs-filename
      const body = await readFile(vendorPath(name) ?? join(dir, name));
      return { type: CONTENT_TYPES[extension] ?? "application/octet-stream", body };
    } catch {
      throw new ApiError("not_found", `no file ${name}`);
    }
  };

  app.get(
    "/",
    { config: { rateLimit: false }, schema: { hide: true } },
    async (_request, reply) => {
      const file = await serve("index.html");
      return reply.type(file.type).header("cache-control", "no-cache").send(file.body);
    },
  );

  app.get(
    "/:asset",
    {
      config: { rateLimit: false },
      schema: { hide: true, params: z.object({ asset: z.string().max(200) }) },
    },
    async (request, reply) => {
      const file = await serve(request.params.asset);
      return reply.type(file.type).header("cache-control", "no-cache").send(file.body);
    },
  );
  done();
};
