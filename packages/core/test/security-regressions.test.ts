/**
 * Security regressions kept as named tests (go-smtp style): SMTP smuggling (CVE-2023-51764 class,
 * aiosmtpd CVE-2024-27305), STARTTLS command injection (CVE-2024-34083 / RFC 3207 §6), and the
 * memory bounds that keep a hostile client from making the engine buffer without limit.
 */
import { describe, expect, it } from "vitest";
import type { BodyEndEvent, SmtpEvent } from "../src/events.js";
import { bin, Dialog, dialog, GOOD_PLAIN_B64 } from "./helpers/dialog.js";

const OPEN = "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n";

function count(events: readonly SmtpEvent[], type: SmtpEvent["type"]): number {
  return events.filter((event) => event.type === type).length;
}

describe("SMTP smuggling", () => {
  it("TestServer_smtpSmuggling (aiosmtpd tests/test_smtpsmuggling.py)", () => {
    const d = dialog(`${OPEN}Subject: test\r\n\r\nTesting\n.\r\nNO SMUGGLING\r\n.\r\n`);
    expect(count(d.events, "bodyEnd")).toBe(1);
    expect(d.bodies).toHaveLength(1);
    expect(d.bodies[0]).toContain("NO SMUGGLING");
    expect(d.bodies[0]).toBe("Subject: test\r\n\r\nTesting\n.\r\nNO SMUGGLING\r\n");
  });

  const variants: readonly (readonly [string, string])[] = [
    ["TestServer_LFDotCRLF", "\n.\r\n"],
    ["TestServer_CRLFDotLF", "\r\n.\n"],
    ["TestServer_LFDotLF", "\n.\n"],
    ["TestServer_CRDotCR", "\r.\r"],
    ["TestServer_CRDotCRLF", "\r.\r\n"],
    ["TestServer_CRLFDotCR", "\r\n.\r"],
    ["TestServer_LFDotCR", "\n.\r"],
  ];

  for (const [name, terminator] of variants) {
    it(`${name}: ${JSON.stringify(terminator)} followed by a second transaction stays in the body`, () => {
      const smuggled =
        "MAIL FROM:<admin@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nFrom: admin@example.com\r\n\r\nsmuggled\r\n";
      const d = dialog(`${OPEN}legit${terminator}${smuggled}.\r\nQUIT\r\n`);
      expect(count(d.events, "mail")).toBe(1);
      expect(count(d.events, "rcpt")).toBe(1);
      expect(count(d.events, "bodyEnd")).toBe(1);
      expect(d.bodies[0]).toContain("smuggled");
      expect(d.bodies[0]).toContain("RCPT TO:<victim@example.com>");
      expect(d.replyLines.slice(-2)).toEqual(["250 2.0.0 OK", "221 2.0.0 Bye"]);
    });

    it(`${name} under lineEndings "reject": refused after the real terminator`, () => {
      const d = dialog(`${OPEN}legit${terminator}MAIL FROM:<admin@example.com>\r\n.\r\nNOOP\r\n`, {
        options: { lineEndings: "reject" },
      });
      expect(count(d.events, "mail")).toBe(1);
      const end = d.events.find((e): e is BodyEndEvent => e.type === "bodyEnd");
      expect(end?.error).toBe("bareLineEnding");
      expect(d.replyLines.slice(-2)).toEqual([
        "554 5.6.0 Error: bare <CR> or <LF> in message data (see RFC5321 2.3.8)",
        "250 2.0.0 OK",
      ]);
    });
  }

  it("TestServer_smugglingSplitAcrossPackets: the variants split at every byte", () => {
    const input = `${OPEN}a\n.\r\nMAIL FROM:<evil@example.com>\r\nb\r\n.\n.\r\n.\r\n`;
    for (let size = 1; size <= 8; size++) {
      const d = dialog(input, { chunks: size });
      expect(count(d.events, "mail"), `chunks of ${size}`).toBe(1);
      expect(count(d.events, "bodyEnd")).toBe(1);
    }
  });

  it("TestServer_dotStuffedTerminatorLookalike: ..CRLF is a stuffed dot, not the end", () => {
    const d = dialog(`${OPEN}a\r\n..\r\nMAIL FROM:<evil@example.com>\r\n.\r\n`);
    expect(count(d.events, "mail")).toBe(1);
    expect(d.bodies[0]).toBe("a\r\n.\r\nMAIL FROM:<evil@example.com>\r\n");
  });
});

describe("STARTTLS command injection (RFC 3207 §6, aiosmtpd CVE-2024-34083)", () => {
  it("TestServer_startTLSInjection: STARTTLS\\r\\nNOOP\\r\\nEHLO evil\\r\\n in one chunk gets no replies for the injected lines", () => {
    const d = new Dialog({ options: { startTls: true } });
    d.send("EHLO c\r\n");
    const before = d.rawEvents.length;
    expect(d.send("STARTTLS\r\nNOOP\r\nEHLO evil\r\n")).toBe("220 2.0.0 Ready to start TLS\r\n");
    expect(d.rawEvents.slice(before).map((e) => e.type)).toEqual(["startTls"]);
    d.send({ tls: true });
    expect(d.send("EHLO good\r\n")).toContain("250 HELP");
    const hellos = d.events.filter((e) => e.type === "hello");
    expect(hellos.map((e) => (e.type === "hello" ? e.hostname : ""))).toEqual(["c", "good"]);
  });

  it("TestServer_startTLSInjectionPartialLine: a partial line after STARTTLS is dropped", () => {
    const d = new Dialog({ options: { startTls: true } });
    d.send("STARTTLS\r\nMAIL FROM:<evil@exa");
    d.send({ tls: true });
    expect(d.send("mple.com>\r\n")).toBe('500 5.5.1 Error: command "MPLE.COM>" not recognized\r\n');
    expect(count(d.events, "mail")).toBe(0);
  });

  it("TestServer_startTLSInjectionLaterPackets: plaintext arriving before the handshake is dropped", () => {
    const d = new Dialog({ options: { startTls: true } });
    d.send("STARTTLS\r\n");
    d.send("NOOP\r\n");
    d.send("AUTH PLAIN AAAA\r\n");
    expect(d.conn.bufferedBytes).toBe(0);
    expect(d.send({ tls: true })).toBe("");
    expect(d.send("NOOP\r\n")).toBe("250 2.0.0 OK\r\n");
    expect(d.rawEvents.map((e) => e.type)).toEqual(["startTls", "noop"]);
  });

  it("TestServer_startTLSInjectionRequireTLS: injected commands do not bypass requireStartTls", () => {
    const d = dialog(
      [
        "STARTTLS\r\nEHLO evil\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<x@example.com>\r\n",
        { tls: true },
        "MAIL FROM:<a@example.com>\r\n",
      ],
      { options: { startTls: true, requireStartTls: true } },
    );
    expect(count(d.events, "mail")).toBe(0);
    expect(d.replyLines.at(-1)).toBe("503 5.5.1 Error: send HELO first");
  });

  it("TestServer_startTLSTwice: a second STARTTLS under TLS is refused (beyond.md)", () => {
    const d = dialog(["STARTTLS\r\n", { tls: true }, "STARTTLS\r\nNOOP\r\n"], {
      options: { startTls: true },
    });
    expect(d.replyLines.slice(-2)).toEqual(["503 5.5.1 Error: TLS already active", "250 2.0.0 OK"]);
    expect(d.status).toBe("needData");
  });
});

describe("over-long lines and bounded memory", () => {
  it("TestServer_tooLongLine: 1 MB without LF gets one 500 Command line too long, memory bounded", () => {
    const d = new Dialog({ chunks: 4096 });
    d.send(`NOOP ${"x".repeat(1 << 20)}`);
    expect(d.output).toBe("220 localhost smtpkit\r\n");
    expect(d.maxBuffered).toBeLessThanOrEqual(1001 + 4096);
    d.send("\r\nNOOP\r\n");
    expect(d.replyLines.slice(1)).toEqual(["500 5.5.2 Command line too long", "250 2.0.0 OK"]);
  });

  it("TestServer_tooLongLineOneChunk: the LF and the next command in the same chunk are kept", () => {
    const d = dialog(`NOOP ${"x".repeat(1 << 20)}\r\nNOOP\r\n`);
    expect(d.replyLines.slice(1)).toEqual(["500 5.5.2 Command line too long", "250 2.0.0 OK"]);
  });

  it("TestServer_tooLongLineLFInLaterChunk: the LF far into a later chunk ends the long line", () => {
    const d = dialog([`NOOP ${"x".repeat(3000)}`, `${"x".repeat(3000)}\r\nNOOP\r\n`]);
    expect(d.replyLines.slice(1)).toEqual(["500 5.5.2 Command line too long", "250 2.0.0 OK"]);
  });

  it("TestServer_tooLongLineChunked: any chunk size gives one 500 and then the next command", () => {
    for (const size of [1, 7, 1000, 1001, 1002, 4096, 65536]) {
      const d = dialog(`NOOP ${"x".repeat(20_000)}\r\nNOOP\r\n`, { chunks: size });
      expect(d.replyLines.slice(1), `chunks of ${size}`).toEqual([
        "500 5.5.2 Command line too long",
        "250 2.0.0 OK",
      ]);
    }
  });

  it("TestServer_tooLongBody: an over-size body is answered once, after the dot, with bounded memory", () => {
    const d = new Dialog({ options: { dataSizeLimit: 1000 }, chunks: 512 });
    d.send(OPEN);
    d.send(`${"0123456789abcdef\r\n".repeat(10_000)}`);
    expect(d.replyLines.at(-1)).toBe("354 End data with <CR><LF>.<CR><LF>");
    expect(d.maxBuffered).toBeLessThanOrEqual(1001 + 512);
    d.send(".\r\nNOOP\r\n");
    expect(d.replyLines.slice(-2)).toEqual(["552 5.3.4 Error: Too much mail data", "250 2.0.0 OK"]);
  });

  it("TestServer_tooLongDataLineUnbounded: a body line of 1 MB is discarded as it comes", () => {
    const d = new Dialog({ chunks: 8192 });
    d.send(OPEN);
    d.send("y".repeat(1 << 20));
    expect(d.maxBuffered).toBeLessThanOrEqual(8192);
    d.send("\r\n.\r\n");
    expect(d.replyLines.at(-1)).toBe("500 5.5.2 Line too long (see RFC5321 4.5.3.1.6)");
  });

  it("TestServer_unboundedProxyHeader: a 10 KB v1 header without LF is closed without waiting", () => {
    const d = new Dialog({ options: { proxyProtocol: true } });
    d.send(`PROXY TCP4 ${"1".repeat(10_000)}`);
    expect(d.status).toBe("closed");
    expect(d.closedReason).toBe("proxyRejected");
    expect(d.output).toBe("");
  });

  it("TestServer_unboundedProxyHeaderTrickle: bytes one at a time, closed at the 108th", () => {
    const d = new Dialog({ options: { proxyProtocol: true }, chunks: 1 });
    d.send(`PROXY TCP4 ${"1".repeat(200)}`);
    expect(d.closedReason).toBe("proxyRejected");
    expect(d.maxBuffered).toBeLessThanOrEqual(108);
  });

  it("TestServer_authLineTooLong: an AUTH command of 20 KB gets 500 5.5.6", () => {
    const d = dialog(`EHLO c\r\nAUTH PLAIN ${"A".repeat(20_000)}\r\nNOOP\r\n`, {
      options: { implicitTls: true, auth: { mechanisms: ["PLAIN"] } },
    });
    expect(d.replyLines.slice(-2)).toEqual([
      "500 5.5.6 Authentication Exchange line is too long",
      "250 2.0.0 OK",
    ]);
    expect(d.events.some((e) => e.type === "auth")).toBe(false);
  });

  it("TestServer_authResponseTooLong: an AUTH response line of 20 KB gets 500 5.5.6", () => {
    const d = dialog(`EHLO c\r\nAUTH PLAIN\r\n${"A".repeat(20_000)}\r\nNOOP\r\n`, {
      options: { implicitTls: true, auth: { mechanisms: ["PLAIN"] } },
    });
    expect(d.replyLines.slice(-3)).toEqual([
      "334 ",
      "500 5.5.6 Authentication Exchange line is too long",
      "250 2.0.0 OK",
    ]);
    expect(d.events.filter((e) => e.type === "authAborted")).toEqual([
      { type: "authAborted", reason: "lineTooLong" },
    ]);
  });

  it("TestServer_authLineLimit: 12288 octets of AUTH line are accepted (RFC 4954 §4)", () => {
    // Two spaces after the mechanism make the base64 a multiple of 4 at exactly 12288 octets.
    const line = `AUTH PLAIN  ${"A".repeat(12276)}`;
    expect(line.length).toBe(12288);
    const d = dialog(`EHLO c\r\n${line}\r\nAUTH PLAIN ${GOOD_PLAIN_B64}\r\n`, {
      options: { implicitTls: true, auth: { mechanisms: ["PLAIN"] } },
    });
    expect(d.events.filter((e) => e.type === "auth")).toHaveLength(2);
    expect(d.replyLines.slice(-2)).toEqual([
      "535 5.7.8 Authentication credentials invalid",
      "235 2.7.0 Authentication successful",
    ]);
  });

  /**
   * Counts the bytes Uint8Array#indexOf examines while `run` runs: the engine's line search is
   * made of such calls, so the count shows linear or quadratic work without timing anything.
   */
  function bytesScanned(run: () => void): number {
    const original = Uint8Array.prototype.indexOf;
    let scanned = 0;
    Uint8Array.prototype.indexOf = function (this: Uint8Array, value: number, from = 0) {
      const found = original.call(this, value, from);
      scanned += (found === -1 ? this.length : found + 1) - Math.max(0, from);
      return found;
    };
    try {
      run();
    } finally {
      Uint8Array.prototype.indexOf = original;
    }
    return scanned;
  }

  it("TestServer_slowlorisAuthLine: an 8 KB AUTH line trickled one byte at a time costs linear work", () => {
    const d = new Dialog({
      options: { implicitTls: true, auth: { mechanisms: ["PLAIN"] } },
      chunks: 1,
    });
    const input = `EHLO c\r\nAUTH PLAIN ${"A".repeat(8_000)}`;
    // Rescanning the buffer for every byte would examine ~32 million bytes; a resumed scan ~8 KB.
    const scanned = bytesScanned(() => d.send(input));
    d.send("\r\n");
    expect(d.replyLines.at(-1)).toBe("535 5.7.8 Authentication credentials invalid");
    expect(scanned).toBeLessThan(input.length * 8);
  });

  it("TestServer_slowlorisCommandLine: 60 lines of 1000 octets trickled one byte at a time", () => {
    const d = new Dialog({ chunks: 1 });
    const input = `NOOP ${"x".repeat(993)}\r\n`;
    const scanned = bytesScanned(() => {
      for (let i = 0; i < 60; i++) d.send(input);
    });
    expect(d.replyLines.filter((line) => line === "500 5.5.2 Command line too long")).toHaveLength(
      60,
    );
    expect(scanned).toBeLessThan(60 * input.length * 8);
  });

  it("TestServer_manyUnknownCommands: the fifth closes the session", () => {
    const d = dialog("A\r\nB\r\nC\r\nD\r\nE\r\nF\r\nG\r\n");
    expect(d.closedReason).toBe("tooManyUnknownCommands");
    expect(d.replyLines.at(-1)).toBe("502 5.5.1 Too many unrecognized commands, goodbye.");
  });

  it("TestServer_bdatHugeSize: a BDAT size over the limit is not buffered", () => {
    const d = new Dialog({ options: { dataSizeLimit: 100 }, chunks: 4096 });
    d.send(
      "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 1000000 LAST\r\n",
    );
    d.send("z".repeat(1_000_000));
    expect(d.maxBuffered).toBeLessThanOrEqual(4096 + 100);
    expect(d.replyLines.at(-1)).toBe("552 5.3.4 Error: Too much mail data");
    expect(d.bodies.join("")).not.toContain("z".repeat(200));
  });

  it("TestServer_nulInCommand: NUL bytes in a command line are just bytes", () => {
    const d = dialog(bin("NOOP \0\0\r\nHELO a\0b\r\n"));
    expect(d.replyLines.slice(1, 2)).toEqual(["250 2.0.0 OK"]);
    expect(d.status).toBe("needData");
  });
});
