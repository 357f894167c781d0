/**
 * @packageDocumentation
 * The SafeDeploy web dashboard: a dependency-free static page (`public/index.html`, `style.css`
 * and JavaScript modules the browser loads unbuilt: `app.js` wires `api.js`, `live.js`, `dom.js`
 * and one module per card) that the gateway serves at `/` and that talks to the API at `/v1` on
 * the same origin with the token the user signs in with. The modules are type-checked against
 * `@safedeploy/schema`'s views by `tsconfig.public.json`.
 */
import { fileURLToPath } from "node:url";

/** Absolute path of the dashboard's static files (the same from `src` and from `dist`). */
export const dashboardAssetsDir: string = fileURLToPath(new URL("../public/", import.meta.url));
