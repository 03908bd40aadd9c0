import { expect, test } from "vitest";

// Read through Vite (the core's tests have no Node types): the README and the runtime copy.
const FILES = import.meta.glob<string>(["../../../README.md", "../runtime/readme-example.mjs"], {
  query: "?raw",
  import: "default",
  eager: true,
});

// The runtime suites (Node, Deno, Bun) run runtime/readme-example.mjs; this keeps it identical to
// the README's "Using the core alone" example, so what the README shows is what is tested.
test("runtime/readme-example.mjs is the README's core-alone example", () => {
  const readme = FILES["../../../README.md"] ?? "";
  const block = /## Using the core alone[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  const file = FILES["../runtime/readme-example.mjs"] ?? "";
  const code = file.split("\n").slice(2).join("\n");
  expect(code).toBe(block?.replace('from "@smtpkit/core";', 'from "../dist/index.js";'));
});
