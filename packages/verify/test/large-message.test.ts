// A large signed message through the verifier: DKIM is checked on the stream, the copy goes to a
// spool file (removed afterwards), and memory does not grow with the message.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Handler } from "@smtpkit/core/server";
import { dkimSign } from "mailauth";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { authenticationOf, verifier } from "../src/index.js";
import { Dnsmasq, dnsmasqMissing, withDnsmasq } from "./dnsmasq.js";
import { dkimPrivateKey, send, serversForEachTest, ZONE } from "./fixtures.js";

const MB = 1024 * 1024;
const SIZE = 64 * MB;
const LINE = `${"0123456789".repeat(7)}\r\n`; // 72 octets

/** The same message every time, made on the fly: headers, then SIZE octets of lines. */
function* messageChunks(): Generator<Buffer> {
  yield Buffer.from(
    "From: alice@example.com\r\nTo: bob@example.net\r\nSubject: big\r\n" +
      "Date: Fri, 04 Dec 2026 01:00:00 +0000\r\nMessage-ID: <big@example.com>\r\n\r\n",
  );
  const block = Buffer.from(LINE.repeat(Math.floor((64 * 1024) / LINE.length)));
  for (let sent = 0; sent < SIZE; sent += block.length) yield block;
}

describe.skipIf(dnsmasqMissing)(withDnsmasq("a large message"), () => {
  const dns = new Dnsmasq();
  // The default 32 MiB limit would refuse this message.
  const start = serversForEachTest({ dataSizeLimit: 128 * MB });
  const spoolDir = mkdtempSync(join(tmpdir(), "smtpkit-verify-spool-"));
  beforeAll(() => dns.start(ZONE));
  afterAll(async () => {
    await dns.stop();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  test("64 MB, DKIM-signed: verified while streaming, spooled to a file, memory flat", async () => {
    const signed = await dkimSign(Readable.from(messageChunks()), {
      canonicalization: "relaxed/relaxed",
      signatureData: [
        { signingDomain: "example.com", selector: "sel", privateKey: dkimPrivateKey },
      ],
    } as unknown as Parameters<typeof dkimSign>[1]);

    let received = 0;
    let spoolFiles: string[] = [];
    let verdict = "";
    let detail = "";
    const count: Handler = {
      async handleDATAStream(_s, _ss, envelope, body) {
        // The copy is on disk while the delivery reads it.
        spoolFiles = readdirSync(spoolDir);
        const dkim = authenticationOf(envelope)?.dkim?.[0];
        verdict = dkim?.status.result ?? "";
        detail = JSON.stringify(dkim?.status ?? null);
        for await (const chunk of body) received += chunk.length;
        return "250 2.0.0 Counted";
      },
    };
    const server = await start(
      verifier({ dnsServer: dns.server, spoolDir, spoolThreshold: MB }),
      count,
    );

    global.gc?.();
    const base = process.memoryUsage();
    let peak = 0;
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peak = Math.max(peak, now.heapUsed + now.arrayBuffers - base.heapUsed - base.arrayBuffers);
    }, 20);
    try {
      const info = await send(
        server.port,
        { from: "alice@example.com" },
        Readable.from(
          (function* () {
            yield Buffer.from(signed.signatures);
            yield* messageChunks();
          })(),
        ),
      );
      expect(info.response).toBe("250 2.0.0 Counted");
    } finally {
      clearInterval(sampler);
    }
    // Generous: garbage not yet collected counts too. A message held whole would be 64 MB+.
    expect(peak).toBeLessThan(48 * MB);
    expect(verdict, detail).toBe("pass");
    expect(spoolFiles).toHaveLength(1);
    expect(readdirSync(spoolDir)).toEqual([]); // removed once replayed
    expect(received).toBeGreaterThan(SIZE);
  });
});
