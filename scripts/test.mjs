#!/usr/bin/env node
// `npm test`: builds, runs every workspace's test, test:deno and test:bun through turbo (only a
// failing task's output is shown), then ends with one line summed over every runner (vitest, deno
// test, bun test), read from the logs turbo keeps per task: `total: N passed, M failed, K skipped`.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { root } from "./workspaces.mjs";

const TASKS = ["test", "test:deno", "test:bun"];
const turbo = (args) =>
  spawnSync("npx", ["turbo", "run", ...args, "--output-logs=errors-only"], {
    cwd: root,
    stdio: "inherit",
  }).status ?? 1;

const started = Date.now() - 1000;
let status = turbo(["build"]);
if (status === 0) status = turbo([...TASKS, "--continue"]);

const totals = { passed: 0, failed: 0, skipped: 0 };
const add = (key, value) => (totals[key] += Number(value));
for (const group of ["packages", "apps", "tests"]) {
  const base = join(root, group);
  if (!existsSync(base)) continue;
  for (const name of readdirSync(base)) {
    for (const task of TASKS) {
      const log = join(base, name, ".turbo", `turbo-${task.replace(":", "$colon$")}.log`);
      if (!existsSync(log) || statSync(log).mtimeMs < started) continue; // not run this time
      count(
        readFileSync(log, "utf8").replace(
          new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"),
          "",
        ),
      );
    }
  }
}

/** Adds one runner's summary lines: vitest's "Tests  ...", deno test's "ok | ...", bun test's " N pass". */
function count(text) {
  for (const line of text.split("\n")) {
    if (/^\s*Tests\s+\d+ (passed|failed|skipped|todo)/.test(line)) {
      for (const [, n, word] of line.matchAll(/(\d+) (passed|failed|skipped|todo)/g))
        add(word === "todo" ? "skipped" : word, n);
    } else if (/^(ok|FAILED) \| \d+ passed/.test(line)) {
      for (const [, n, word] of line.matchAll(/(\d+) (passed|failed|ignored)/g))
        add(word === "ignored" ? "skipped" : word, n);
    } else {
      const bun = /^\s*(\d+) (pass|fail|skip|todo)$/.exec(line);
      if (bun)
        add({ pass: "passed", fail: "failed", skip: "skipped", todo: "skipped" }[bun[2]], bun[1]);
    }
  }
}

if (status !== 0 && totals.failed === 0) totals.failed = 1; // a build or a runner failed outright
console.log(`total: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(status);
