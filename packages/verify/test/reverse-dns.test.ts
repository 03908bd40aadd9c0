// Forward-confirmed reverse DNS against dnsmasq, the resolver's cache and deadline, and the
// session fields reaching Received: through Mailbox.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { isIPv6 } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test as propTest } from "@fast-check/vitest";
import { compose, type Handler } from "@smtpkit/core/server";
import { Mailbox } from "@smtpkit/handlers";
import { serve } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { makeCertificate } from "../../node/test/helpers.js";
import { dnsResolver, lookUpReverseName, reverseDns, reverseQueryName } from "../src/index.js";
import { Dnsmasq, dnsmasqMissing, silentDnsServer, withDnsmasq } from "./dnsmasq.js";
import { send, serversForEachTest, ZONE } from "./fixtures.js";

describe.skipIf(dnsmasqMissing)(withDnsmasq("reverse DNS against dnsmasq"), () => {
  const dns = new Dnsmasq();
  const start = serversForEachTest();
  const root = mkdtempSync(join(tmpdir(), "smtpkit-rdns-"));
  beforeAll(() => dns.start(ZONE));
  afterAll(async () => {
    await dns.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test("a PTR name that resolves back is confirmed; one that does not is not", async () => {
    const resolver = dnsResolver({ server: dns.server, timeout: 1500 });
    expect(await lookUpReverseName("127.0.0.1", resolver)).toEqual({
      reverseName: "mail.example.com",
      fcrdns: true,
    });
    expect(await lookUpReverseName("127.0.0.2", resolver)).toEqual({
      reverseName: "liar.example.com",
      fcrdns: false,
    });
    expect(await lookUpReverseName("127.0.0.77", resolver)).toEqual({
      reverseName: null,
      fcrdns: false,
    });
  });

  test("the session carries it into Mailbox's Received:", async () => {
    const dir = join(root, "box");
    const seen: { name: unknown; fcrdns: unknown }[] = [];
    const watch: Handler = {
      handleMAIL(_server, session) {
        seen.push({ name: session.reverseName, fcrdns: session.fcrdns });
      },
    };
    const server = await start(reverseDns({ dnsServer: dns.server }), watch, new Mailbox(dir));
    await send(server.port, { from: "alice@example.com" }, "Subject: r\r\n\r\nx\r\n");
    await send(server.port, { from: "alice@example.com" }, "Subject: r\r\n\r\nx\r\n", "127.0.0.2");
    expect(seen).toEqual([
      { name: "mail.example.com", fcrdns: true },
      { name: "liar.example.com", fcrdns: false },
    ]);
    const texts = readdirSync(join(dir, "new")).map((f) =>
      readFileSync(join(dir, "new", f), "utf8"),
    );
    const lines = texts.map((t) => /^Received: (.*)$/m.exec(t)?.[1]).sort();
    expect(lines[0]).toMatch(/^from client\.example\.com \(\[127\.0\.0\.2\]\) by mx\.test /);
    expect(lines[1]).toMatch(
      /^from client\.example\.com \(mail\.example\.com \[127\.0\.0\.1\]\) by mx\.test /,
    );
  });

  test("the name survives STARTTLS (a new Session) into Received: with ESMTPS", async () => {
    const dir = join(root, "tls");
    const tlsServer = await serve(
      compose(reverseDns({ dnsServer: dns.server }), new Mailbox(dir)),
      { host: "127.0.0.1", port: 0, hostname: "mx.test", tls: makeCertificate() },
    );
    try {
      await nodemailer
        .createTransport({
          host: "127.0.0.1",
          port: tlsServer.port,
          requireTLS: true,
          tls: { rejectUnauthorized: false },
          name: "client.example.com",
        })
        .sendMail({
          envelope: { from: "a@example.com", to: ["b@example.net"] },
          raw: "Subject: t\r\n\r\nx\r\n",
        });
    } finally {
      await tlsServer.close({ timeout: 100 });
    }
    const [file] = readdirSync(join(dir, "new"));
    const text = readFileSync(join(dir, "new", file as string), "utf8");
    expect(text).toMatch(
      /\nReceived: from client\.example\.com \(mail\.example\.com \[127\.0\.0\.1\]\) by mx\.test with ESMTPS \(TLSv1\.\d /,
    );
  });

  test("answers are cached: the name still resolves once the server is gone", async () => {
    const other = new Dnsmasq();
    await other.start(ZONE);
    const resolver = dnsResolver({ server: other.server, timeout: 800, cacheTtl: 60_000 });
    expect(await resolver("example.com", "TXT")).toEqual([["v=spf1 ip4:127.0.0.1 -all"]]);
    await other.stop();
    expect(await resolver("EXAMPLE.com", "txt")).toEqual([["v=spf1 ip4:127.0.0.1 -all"]]);
    await expect(resolver("example.org", "TXT")).rejects.toMatchObject({
      code: expect.stringMatching(/^(ETIMEOUT|ECONNREFUSED)$/),
    });
  });
});

describe("reverse DNS without an answer", () => {
  test("a DNS server that never answers: no name, within the deadline", async () => {
    const silent = await silentDnsServer();
    try {
      const resolver = dnsResolver({ server: silent.server, timeout: 5000 });
      const started = Date.now();
      expect(await lookUpReverseName("127.0.0.1", resolver, { timeout: 500 })).toEqual({
        reverseName: null,
        fcrdns: false,
      });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await silent.close();
    }
  });

  test("a lookup that outlives the resolver's timeout rejects with ETIMEOUT", async () => {
    const silent = await silentDnsServer();
    try {
      const resolver = dnsResolver({ server: silent.server, timeout: 300, tries: 1 });
      await expect(resolver("example.com", "TXT")).rejects.toMatchObject({ code: "ETIMEOUT" });
    } finally {
      await silent.close();
    }
  });
});

describe("reverseQueryName", () => {
  test("IPv4, IPv6 and IPv4-mapped addresses", () => {
    expect(reverseQueryName("192.0.2.5")).toBe("5.2.0.192.in-addr.arpa");
    expect(reverseQueryName("2001:db8::1")).toBe(
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
    expect(reverseQueryName("::ffff:192.0.2.5")).toBe("5.2.0.192.in-addr.arpa");
    expect(reverseQueryName("not an address")).toBeNull();
  });

  propTest.prop([fc.ipV6()])("every IPv6 address has 32 nibbles under ip6.arpa", (address) => {
    const name = reverseQueryName(address);
    if (/^::ffff:\d/i.test(address)) return; // mapped: the IPv4 name
    expect(isIPv6(address)).toBe(true);
    expect(name).toMatch(/^([0-9a-f]\.){32}ip6\.arpa$/);
  });
});
