// This file is the README's Memory example ("Memory: the test kit"), run as a test. The check at
// the end keeps both identical; only the import of "@smtpkit/handlers" differs (here: ../src).
// --- example start ---

import { type SmtpServer, serve } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Memory } from "../src/index.js";

const memory = new Memory();
let server: SmtpServer;
beforeAll(async () => {
  server = await serve(memory, { host: "127.0.0.1", port: 0 });
});
afterAll(() => server.close());

it("sends the welcome mail", async () => {
  const inbox = memory.scope(); // this test's view: only what arrives from now on
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port: server.port,
    secure: false,
    ignoreTLS: true,
  });
  await transport.sendMail({
    from: "app@example.com",
    to: "bob@example.com",
    subject: "Welcome, Bob",
    text: "Hi Bob, thanks for signing up!",
  });

  const mail = await inbox.waitFor({ to: "bob@example.com", subject: /Welcome/ });
  expect(mail.from).toEqual({ name: "", address: "app@example.com" });
  expect(mail.text).toContain("thanks for signing up");
  expect(mail.rcptTos).toEqual(["bob@example.com"]);
});

it("retries when the server says 421", async () => {
  memory.failNext(1, "421 4.3.2 Try again later");
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port: server.port,
    ignoreTLS: true,
  });
  const message = { from: "app@example.com", to: "carol@example.com", subject: "Receipt" };
  await expect(transport.sendMail(message)).rejects.toMatchObject({ responseCode: 421 });
  await transport.sendMail(message);
  expect(memory.inbox("carol@example.com").messages).toHaveLength(1);
});

// --- example end ---

import { readFileSync } from "node:fs";

/** The import lines (sorted: the formatter orders them by path) and the rest of a code block. */
function parts(code: string) {
  const lines = code.trim().split("\n");
  const imports = lines.filter((line) => line.startsWith("import ")).sort();
  return {
    imports,
    body: lines
      .filter((line) => !line.startsWith("import "))
      .join("\n")
      .trim(),
  };
}

it("is the README's example, verbatim", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const block = /<!-- example: memory[^\n]*\n```ts\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
  const self = readFileSync(new URL(import.meta.url), "utf8");
  const example =
    /\/\/ --- example start ---\n([\s\S]*?)\/\/ --- example end ---/.exec(self)?.[1] ?? "";
  expect(parts(example.replace('"../src/index.js"', '"@smtpkit/handlers"'))).toEqual(parts(block));
  expect(parts(block).body).toContain("waitFor");
});
