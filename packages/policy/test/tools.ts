import { spawnSync } from "node:child_process";

/**
 * Why a test needing `tool` cannot run here (`"swaks not installed"`), or false. In CI
 * (.ci/run installs them all) a missing tool throws, so its tests fail instead of skipping.
 */
export function missing(tool: string, versionFlag = "--version"): string | false {
  const found = spawnSync(tool, [versionFlag], { stdio: "ignore" });
  if (found.error === undefined) return false;
  if (process.env.CI) throw new Error(`${tool} is required in CI (see .ci/run)`);
  return `${tool} not installed`;
}

/** ` [skip: swaks not installed]` for a test's name, or nothing. */
export const skipNote = (reason: string | false): string => (reason ? ` [skip: ${reason}]` : "");
