import { main as cli } from "@safedeploy/cli";

/** Recording rules for a catalog, through the real CLI command; throws with what it printed. */
export async function generateRules(catalog: string): Promise<string> {
  let rules = "";
  let errors = "";
  const code = await cli(["rules", "generate", catalog], {
    stdout: (text) => (rules += text),
    stderr: (text) => (errors += text),
    env: {},
    cwd: process.cwd(),
  });
  if (code !== 0) throw new Error(`safedeploy rules generate exited ${code}: ${errors}`);
  return rules;
}
