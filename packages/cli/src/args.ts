// Checks of command-line values shared by the API commands: each refusal is a UsageError that
// names the value, before anything reaches a URL or the API.
import { ResourceName } from "@safedeploy/schema";
import type { z } from "zod";
import { UsageError } from "./io.js";

const ID = /^[A-Za-z0-9._:-]+$/;

/** An id argument (`show`, `transition`, `approve`…), checked before it goes into a URL. */
export function idArgument(value: string | undefined, what: string, command: string): string {
  if (value === undefined) throw new UsageError(`${command} needs ${what}`);
  if (!ID.test(value)) throw new UsageError(`not ${what}: ${JSON.stringify(value)}`);
  return value;
}

/** `--service`: a service name, or absent. */
export function serviceOption(value: string | undefined): string | undefined {
  if (value !== undefined && !ResourceName.safeParse(value).success) {
    throw new UsageError(`not a service name: ${JSON.stringify(value)}`);
  }
  return value;
}

/** `--state` and the like: one of `values`' options (`what` names it), or absent. */
export function enumOption<T extends string>(
  value: string | undefined,
  values: z.ZodEnum<Record<T, T>>,
  what: string,
): T | undefined {
  if (value === undefined) return undefined;
  const parsed = values.safeParse(value);
  if (!parsed.success) {
    throw new UsageError(`unknown ${what} "${value}": one of ${values.options.join(", ")}`);
  }
  return parsed.data;
}

/** Refuses the options given (`values`) that the subcommand `command` does not take. */
export function onlyOptions(
  command: string,
  values: Readonly<Record<string, unknown>>,
  allowed: readonly string[],
): void {
  for (const [option, value] of Object.entries(values)) {
    if (option === "json" || value === undefined || allowed.includes(option)) continue;
    throw new UsageError(`${command} takes no --${option}`);
  }
}
