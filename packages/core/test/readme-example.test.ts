import { readFileSync } from "node:fs";
import { expect, test } from "vitest";

// The runtime suites (Node, Deno, Bun) run runtime/readme-example.mjs; this keeps it identical to
// the README's "Using the core alone" example, so what the README shows is what is tested.
test("runtime/readme-example.mjs is the README's core-alone example", () => {
  const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
  const block = /## Using the core alone[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  const file = readFileSync(new URL("../runtime/readme-example.mjs", import.meta.url), "utf8");
  const code = file.split("\n").slice(2).join("\n");
  expect(code).toBe(block?.replace('from "@smtpkit/core";', 'from "../dist/index.js";'));
});
