// `--verify`, `--verify-policy` and `--dns-server`: the CLI verifies senders against a real
// dnsmasq and Nodemailer sends through it.
import nodemailer from "nodemailer";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Dnsmasq, dnsmasqMissing, withDnsmasq } from "../../../packages/verify/test/dnsmasq.js";
import { killAll, runCli, startCli } from "./cli-helpers.js";

afterEach(killAll);

const MESSAGE =
  "From: alice@example.com\r\nTo: bob@example.net\r\nSubject: verified\r\n\r\nHello.\r\n";

const send = (port: number, localAddress: string) =>
  nodemailer
    .createTransport({
      host: "127.0.0.1",
      port,
      ignoreTLS: true,
      localAddress,
      name: "client.example.com",
    })
    .sendMail({ envelope: { from: "alice@example.com", to: ["bob@example.net"] }, raw: MESSAGE });

describe("verification flags", () => {
  it("usage errors: an unknown check, a policy or DNS server without --verify", async () => {
    const unknown = await runCli(["-n", "--verify", "spf,bimi"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /argument --verify: unknown check bimi; choose from spf, dkim, dmarc, arc/,
    );
    const lonely = await runCli(["-n", "--dns-server", "127.0.0.1:5353"]);
    expect(lonely.code).toBe(2);
    expect(lonely.stderr).toMatch(/argument --dns-server: needs --verify/);
    const policy = await runCli(["-n", "--verify", "dmarc", "--verify-policy", "bounce"]);
    expect(policy.code).toBe(2);
    expect(policy.stderr).toMatch(/argument --verify-policy: invalid choice: bounce/);
  });
});

describe.skipIf(dnsmasqMissing)(withDnsmasq("smtpkit --verify against dnsmasq"), () => {
  const dns = new Dnsmasq();
  beforeAll(() =>
    dns.start({
      txt: {
        "example.com": "v=spf1 ip4:127.0.0.1 -all",
        "_dmarc.example.com": "v=DMARC1; p=reject",
      },
      a: { "mail.example.com": "127.0.0.1" },
    }),
  );
  afterAll(() => dns.stop());

  it("tags what passes, refuses a DMARC p=reject failure with --verify-policy reject", async () => {
    const cli = await startCli([
      "-n",
      "-l",
      "127.0.0.1:0",
      "--hostname",
      "mx.test",
      "-c",
      "Debugging",
      "--verify",
      "spf,dkim,dmarc,arc",
      "--verify-policy",
      "reject",
      "--dns-server",
      dns.server,
    ]);
    const info = await send(cli.port, "127.0.0.1");
    expect(info.response).toMatch(/^250 /);
    const out = await cli.waitForStdout("Hello.");
    expect(out).toMatch(/Authentication-Results: mx\.test;/);
    expect(out).toMatch(
      /spf=pass \(mx\.test: domain of alice@example\.com designates 127\.0\.0\.1/,
    );
    expect(out).toMatch(/dmarc=pass/);
    // The same sender from an address its SPF record does not list, unsigned: DMARC fails.
    await expect(send(cli.port, "127.0.0.2")).rejects.toMatchObject({
      responseCode: 550,
      response: expect.stringMatching(/^550 5\.7\.1 /),
    });
    expect(await cli.stop()).toBe(0);
  });
});
