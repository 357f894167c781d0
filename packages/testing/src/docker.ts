import { existsSync } from "node:fs";
import { request } from "node:http";

let answer: Promise<boolean> | undefined;

/**
 * Whether a Docker engine answers on its socket. The `docker` client alone is not enough: tests
 * use testcontainers only when an engine really runs.
 */
export async function dockerAvailable(): Promise<boolean> {
  answer ??= new Promise((resolve) => {
    const host = process.env.DOCKER_HOST;
    const socketPath =
      host?.startsWith("unix://") === true ? host.slice("unix://".length) : "/var/run/docker.sock";
    if (host !== undefined && !host.startsWith("unix://")) {
      resolve(true); // a remote engine was configured on purpose
      return;
    }
    if (!existsSync(socketPath)) {
      resolve(false);
      return;
    }
    const req = request({ socketPath, path: "/_ping", timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once("error", () => {
      resolve(false);
    });
    req.once("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
  return answer;
}
