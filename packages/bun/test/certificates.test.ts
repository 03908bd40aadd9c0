// What @smtpkit/bun cannot do with certificates, asserted so that a Bun release that can is noticed.
import { expect, test } from "bun:test";
import { serve } from "../src/index.ts";

test("an SNI map is refused: Bun.listen and socket.upgradeTLS take one certificate", async () => {
  const pem = { key: "unused", cert: "unused" };
  await expect(
    serve({}, { port: 0, tls: { default: pem, sni: { "mx.test": pem } } }),
  ).rejects.toThrow(/SNI/);
});

test("Bun.listen refuses an array of certificates, which Bun.serve takes for SNI", () => {
  const pem = { key: "unused", cert: "unused" };
  const listen = Bun.listen as unknown as (options: object) => { stop(): void };
  expect(() =>
    listen({
      hostname: "127.0.0.1",
      port: 0,
      tls: [pem, { ...pem, serverName: "mx.test" }],
      socket: {},
    }),
  ).toThrow(/TLSOptions must be an object/);
});
