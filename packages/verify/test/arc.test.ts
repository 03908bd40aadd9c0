// ARC across two smtpkit hops: the first verifies and seals (ARC-Seal, ARC-Message-Signature,
// ARC-Authentication-Results) and relays with Nodemailer; the second finds a valid chain.
import type { Handler } from "@smtpkit/core/server";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { verifier } from "../src/index.js";
import { Dnsmasq, dnsmasqMissing, withDnsmasq } from "./dnsmasq.js";
import {
  authResults,
  dkimPrivateKey,
  message,
  recorder,
  type Stored,
  send,
  serversForEachTest,
  ZONE,
} from "./fixtures.js";

describe.skipIf(dnsmasqMissing)(withDnsmasq("ARC over two hops"), () => {
  const dns = new Dnsmasq();
  const start = serversForEachTest();
  beforeAll(() => dns.start(ZONE));
  afterAll(() => dns.stop());

  test("the second hop sees arc=pass with the first hop's verdicts", async () => {
    const stored: Stored[] = [];
    const last = await start(
      verifier({ dnsServer: dns.server, authservId: "mx2.test" }),
      recorder(stored),
    );
    const relay: Handler = {
      async handleDATAStream(_s, _ss, envelope, body) {
        const raw = Buffer.from(await body.bytes());
        await nodemailer
          .createTransport({
            host: "127.0.0.1",
            port: last.port,
            ignoreTLS: true,
            name: "relay.example.com",
          })
          .sendMail({ envelope: { from: envelope.mailFrom ?? "", to: envelope.rcptTos }, raw });
        return "250 2.0.0 Relayed";
      },
    };
    const first = await start(
      verifier({
        dnsServer: dns.server,
        authservId: "mx1.test",
        arcSeal: {
          signingDomain: "relay.example.com",
          selector: "arc",
          privateKey: dkimPrivateKey,
        },
      }),
      relay,
    );
    const raw = await message({ from: "alice@example.com", signingDomain: "example.com" });
    const info = await send(first.port, { from: "alice@example.com" }, raw);
    expect(info.response).toBe("250 2.0.0 Relayed");
    const text = stored[0]?.text ?? "";
    expect(text).toMatch(/\r\nARC-Seal: i=1; /);
    expect(text).toMatch(/\r\nARC-Authentication-Results: i=1; mx1\.test;/);
    expect(authResults(text)).toMatch(/^mx2\.test; .*arc=pass \(i=1/);
    expect(stored[0]?.authentication?.arc?.status.result).toBe("pass");
  });
});
