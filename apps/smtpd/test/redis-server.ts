import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { freePort } from "./cli-helpers.js";

/** Why the Redis tests cannot run here, or false; in CI a missing redis-server fails them. */
export const redisServerMissing: string | false = (() => {
  if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).error === undefined)
    return false;
  if (process.env.CI)
    throw new Error("redis-server is required in CI (apt-get install redis-server)");
  return "redis-server not installed";
})();

/** A real redis-server on 127.0.0.1 and a free port, nothing saved to disk. */
export async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error(`redis-server did not start:\n${output}`)),
      15_000,
    );
    child.stdout?.on("data", (data: Buffer) => {
      output += data.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
