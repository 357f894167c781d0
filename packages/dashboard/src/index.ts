/**
 * @packageDocumentation
 * The SafeDeploy web dashboard: a dependency-free static page (`public/index.html`, `app.js`,
 * `sse.js`, `style.css`) that the gateway serves at `/` and that talks to the API at `/v1` on
 * the same origin with the token the user signs in with.
 */
import { fileURLToPath } from "node:url";

/** Absolute path of the dashboard's static files (the same from `src` and from `dist`). */
export const dashboardAssetsDir: string = fileURLToPath(new URL("../public/", import.meta.url));
