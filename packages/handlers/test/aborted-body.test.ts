/**
 * TestServer_bdatResetEndsBody: a transaction ended after a non-LAST BDAT chunk (RSET, EHLO, the
 * client leaving) must end its body, so the handler cleans up: Mailbox removes its temporary
 * file and closes it, Proxy closes the upstream connection it opened for the message.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SmtpServer, serve } from "@smtpkit/node";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Mailbox, Memory, SmtpProxy } from "../src/index.js";
import { eventually, RawClient } from "./support.js";

const root = mkdtempSync(join(tmpdir(), "smtpkit-aborted-"));
const servers: SmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 1000 })));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function start(
  handler: Parameters<typeof serve>[0],
  options: Parameters<typeof serve>[1] = {},
) {
  const server = await serve(handler, { host: "127.0.0.1", port: 0, ...options });
  servers.push(server);
  return server;
}

const openDescriptors = (): number => readdirSync("/proc/self/fd").length;

/** One session: a BDAT chunk, then `ender` ends the transaction; then a whole message. */
async function abortThenDeliver(port: number, ender: string, index: number): Promise<void> {
  const client = await RawClient.connect(port);
  try {
    expect(await client.reply()).toMatch(/^220 /);
    expect(await client.command("EHLO client.example")).toMatch(/^250[ -]/);
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250 /);
    expect(await client.command("RCPT TO:<b@example.com>")).toMatch(/^250 /);
    expect(await client.command("BDAT 14\r\nSubject: par")).toMatch(/^250 /);
    expect(await client.command(ender)).toMatch(/^250[ -]/);
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250 /);
    expect(await client.command("RCPT TO:<b@example.com>")).toMatch(/^250 /);
    expect(await client.command("DATA")).toMatch(/^354 /);
    expect(await client.command(`Subject: whole ${index}\r\n\r\nbody\r\n.`)).toMatch(/^250 /);
    expect(await client.command("QUIT")).toMatch(/^221 /);
  } finally {
    client.destroy();
  }
}

describe("TestServer_bdatResetEndsBody", () => {
  it("Mailbox: many sessions of BDAT + RSET/EHLO leave tmp/ empty and descriptors flat", async () => {
    const dir = join(root, "box");
    const server = await start(new Mailbox(dir));
    // Warm up once so lazily opened descriptors (the directory syncs) do not count.
    await abortThenDeliver(server.port, "RSET", 0);
    const before = openDescriptors();
    const sessions = 60;
    for (let batch = 0; batch < sessions; batch += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          abortThenDeliver(server.port, i % 2 === 0 ? "RSET" : "EHLO again.example", batch + i + 1),
        ),
      );
    }
    await eventually(() => readdirSync(join(dir, "tmp")).length === 0);
    expect(readdirSync(join(dir, "tmp"))).toEqual([]);
    expect(readdirSync(join(dir, "new"))).toHaveLength(sessions + 1);
    await eventually(() => openDescriptors() <= before + 2);
    expect(openDescriptors()).toBeLessThanOrEqual(before + 2);
  });

  it("Mailbox: a client leaving after a BDAT chunk leaves no temporary file", async () => {
    const dir = join(root, "left");
    const server = await start(new Mailbox(dir));
    for (let i = 0; i < 10; i++) {
      const client = await RawClient.connect(server.port);
      await client.reply();
      await client.command("EHLO client.example");
      await client.command("MAIL FROM:<a@example.com>");
      await client.command("RCPT TO:<b@example.com>");
      expect(await client.command("BDAT 7\r\nSubje")).toMatch(/^250 /);
      client.destroy();
    }
    await eventually(() => server.connections === 0);
    await eventually(() => readdirSync(join(dir, "tmp")).length === 0);
    expect(readdirSync(join(dir, "new"))).toEqual([]);
  });

  it("Proxy: the upstream connection opened for an aborted body is closed", async () => {
    const memory = new Memory();
    const upstream = await start(memory, { hostname: "upstream.example" });
    const proxy = await start(new SmtpProxy("127.0.0.1", upstream.port));
    for (let i = 0; i < 10; i++) await abortThenDeliver(proxy.port, "RSET", i);
    await eventually(() => upstream.connections === 0);
    expect(upstream.connections).toBe(0);
    // Only the whole messages arrived upstream.
    expect(memory.messages.map((m) => m.subject)).toEqual(
      Array.from({ length: 10 }, (_, i) => `whole ${i}`),
    );
  });
});
