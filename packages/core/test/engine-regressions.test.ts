/**
 * Engine defects kept as named regressions (go-smtp style, as security-regressions.test.ts):
 *  - a body left open when its transaction ends (RSET, HELO/EHLO/LHLO, STARTTLS, QUIT, EOF,
 *    closeConnection, 421 after a non-LAST BDAT chunk or mid-DATA) is ended as "aborted";
 *  - trailing white space after a verb is not an argument (aiosmtpd's `arg.strip()`);
 *  - replies never echo control bytes from the client;
 *  - the LMTP per-recipient contract is strict and checked before any state change.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { LocalProtocolError } from "../src/errors.js";
import type { SmtpEvent } from "../src/events.js";
import { bin, Dialog, deferAll, dialog, policy } from "./helpers/dialog.js";

const ENVELOPE = "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n";
const CHUNK = `${ENVELOPE}BDAT 3\r\nabc`;

const types = (events: readonly SmtpEvent[]) => events.map((event) => event.type);

/** The events from the first dataStart on. */
function fromData(events: readonly SmtpEvent[]): string[] {
  const all = types(events);
  return all.slice(all.indexOf("dataStart"));
}

function abortedEnd(events: readonly SmtpEvent[]) {
  return events.find((e) => e.type === "bodyEnd");
}

describe("a body open when its transaction ends is aborted", () => {
  const enders: readonly (readonly [string, string, string])[] = [
    ["TestServer_bdatRsetAbortsBody", "RSET\r\n", "rset"],
    ["TestServer_bdatHeloAbortsBody", "HELO again\r\n", "hello"],
    ["TestServer_bdatEhloAbortsBody", "EHLO again\r\n", "hello"],
    ["TestServer_bdatQuitAbortsBody", "QUIT\r\n", "quit"],
  ];
  for (const [name, line, next] of enders) {
    it(`${name}: ${JSON.stringify(line)} after a non-LAST chunk`, () => {
      const d = dialog([CHUNK, line]);
      expect(fromData(d.events).slice(0, 4)).toEqual(["dataStart", "bodyChunk", "bodyEnd", next]);
      expect(abortedEnd(d.events)).toEqual({
        type: "bodyEnd",
        error: "aborted",
        size: 3,
        recipients: ["b@example.com"],
      });
      // No reply for the aborted body: the chunk's 250, then the command's own reply.
      expect(d.replyLines.filter((l) => l.includes("octets"))).toEqual([
        "250 2.0.0 OK: 3 octets received",
      ]);
      expect(d.conn.inTransaction).toBe(false);
    });
  }

  it("TestServer_bdatLhloAbortsBody: LHLO after a non-LAST chunk (LMTP)", () => {
    const d = dialog([CHUNK.replace("EHLO", "LHLO"), "LHLO again\r\n"], {
      options: { lmtp: true },
    });
    expect(fromData(d.events).slice(0, 4)).toEqual(["dataStart", "bodyChunk", "bodyEnd", "hello"]);
    expect(abortedEnd(d.events)).toMatchObject({ error: "aborted" });
  });

  it("TestServer_bdatStartTlsAbortsBody: STARTTLS after a non-LAST chunk", () => {
    const d = dialog([CHUNK, "STARTTLS\r\n"], { options: { startTls: true } });
    expect(fromData(d.events)).toEqual(["dataStart", "bodyChunk", "bodyEnd", "startTls"]);
    expect(abortedEnd(d.events)).toMatchObject({ error: "aborted" });
    expect(d.conn.inTransaction).toBe(false);
  });

  it("TestServer_bdatEofAbortsBody: end of input after a non-LAST chunk", () => {
    const d = dialog([CHUNK, { eof: true }]);
    expect(fromData(d.events)).toEqual(["dataStart", "bodyChunk", "bodyEnd", "closed"]);
    expect(abortedEnd(d.events)).toMatchObject({ error: "aborted" });
  });

  it("TestServer_bdatEofMidChunkAbortsBody: end of input inside a chunk", () => {
    const d = dialog([`${ENVELOPE}BDAT 10\r\nabc`, { eof: true }]);
    expect(fromData(d.events)).toEqual(["dataStart", "bodyChunk", "bodyEnd", "closed"]);
  });

  it("TestServer_eofMidDataAbortsBody: end of input during DATA", () => {
    const d = dialog([`${ENVELOPE}DATA\r\nhalf a bo`, { eof: true }]);
    expect(fromData(d.events)).toEqual(["dataStart", "bodyChunk", "bodyEnd", "closed"]);
    expect(abortedEnd(d.events)).toMatchObject({ error: "aborted" });
    expect(d.replyLines.at(-1)).toBe("354 End data with <CR><LF>.<CR><LF>");
  });

  it("TestServer_closeConnectionMidDataAbortsBody: closeConnection() during DATA", () => {
    const d = dialog([
      `${ENVELOPE}DATA\r\nsome`,
      { act: (conn) => conn.closeConnection("421 4.4.2 timeout") },
    ]);
    expect(fromData(d.events)).toEqual(["dataStart", "bodyChunk", "bodyEnd", "closed"]);
    expect(d.replyLines.at(-1)).toBe("421 4.4.2 timeout");
  });

  it("TestServer_bdat421AbortsBody: a 421 reply after a non-LAST chunk closes and aborts", () => {
    const d = dialog([CHUNK, "NOOP\r\n"], {
      policy: policy({ noop: (_e, conn) => void conn.reply("421 4.3.2 going down") }),
    });
    expect(fromData(d.events)).toEqual(["dataStart", "bodyChunk", "noop", "bodyEnd", "closed"]);
  });

  it("TestServer_bdatThenMailAfterRset: the next transaction gets a fresh body", () => {
    const d = dialog([
      CHUNK,
      "RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 2 LAST\r\nxy",
    ]);
    const ends = d.events.filter((e) => e.type === "bodyEnd");
    expect(ends.map((e) => e.type === "bodyEnd" && e.error)).toEqual(["aborted", null]);
    expect(d.bodies).toEqual(["abc", "xy"]);
  });

  // Random dialogs: commands (BDAT chunks, RSET, EHLO, STARTTLS, QUIT, ...), random bytes,
  // random splits, an EOF or a close at the end.
  const pieces = fc.oneof(
    fc.constantFrom(
      "EHLO c\r\n",
      "HELO c\r\n",
      "MAIL FROM:<a@example.com>\r\n",
      "RCPT TO:<b@example.com>\r\n",
      "BDAT 3\r\nabc",
      "BDAT 0 LAST\r\n",
      "BDAT 2 LAST\r\nxy",
      "BDAT 9999999999\r\n",
      "DATA\r\n",
      "line\r\n.\r\n",
      "RSET\r\n",
      "STARTTLS\r\n",
      "QUIT\r\n",
      "NOOP\r\n",
    ),
    fc.uint8Array({ maxLength: 12 }).map((bytes) => String.fromCharCode(...bytes)),
  );
  test.prop(
    [
      fc.array(pieces, { maxLength: 14 }),
      fc.integer({ min: 1, max: 16 }),
      fc.constantFrom("eof", "close", "none"),
      fc.boolean(),
    ],
    { numRuns: 300 },
  )("TestServer_everyDataStartHasOneBodyEnd", (parts, chunk, end, lmtp) => {
    const options = { startTls: true, lmtp, dataSizeLimit: 50 };
    const d = new Dialog({ options, chunks: chunk });
    const text = parts.join("").replace(/[EH][HE]LO/g, lmtp ? "LHLO" : "$&");
    d.send(text);
    if (d.status === "paused") d.send({ tls: true });
    if (end === "eof") d.send({ eof: true });
    else if (end === "close" && d.status !== "closed") d.send({ act: (c) => c.closeConnection() });
    let open = false;
    for (const event of d.rawEvents) {
      if (event.type === "dataStart") {
        expect(open).toBe(false);
        open = true;
      } else if (event.type === "bodyEnd") {
        expect(open).toBe(true);
        open = false;
      } else if (event.type === "mail" || event.type === "closed") {
        expect(open).toBe(false);
      }
    }
    if (!d.conn.inTransaction) expect(open).toBe(false);
  });
});

describe("trailing white space is not an argument (aiosmtpd's arg.strip())", () => {
  it("TestServer_quitTrailingSpace: QUIT followed by a space gets 221", () => {
    const d = dialog("QUIT \r\n");
    expect(d.replyLines.at(-1)).toBe("221 2.0.0 Bye");
    expect(d.closedReason).toBe("quit");
  });

  it.each([
    ["RSET \t", "250 2.0.0 OK"],
    ["NOOP ", "250 2.0.0 OK"],
    ["QUIT  \t ", "221 2.0.0 Bye"],
    ["STARTTLS ", "220 2.0.0 Ready to start TLS"],
    ["HELO ", "501 5.5.4 Syntax: HELO hostname"],
    ["EHLO \t", "501 5.5.4 Syntax: EHLO hostname"],
    ["VRFY  ", "501 5.5.4 Syntax: VRFY <address>"],
    [
      "HELP ",
      "250 2.0.0 Supported commands: AUTH BDAT DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY",
    ],
  ])("TestServer_trailingWhiteSpace %j -> %s", (line, reply) => {
    const d = dialog(`${line}\r\n`, { options: { startTls: true } });
    expect(d.replyLines.at(-1)).toBe(reply);
  });

  it("TestServer_trailingWhiteSpaceInTransaction: DATA and RSET with trailing blanks", () => {
    const d = dialog(`${ENVELOPE}DATA \r\nx\r\n.\r\nRSET \r\n`);
    expect(d.replyLines.slice(-3)).toEqual([
      "354 End data with <CR><LF>.<CR><LF>",
      "250 2.0.0 OK",
      "250 2.0.0 OK",
    ]);
  });

  it("TestServer_noopArgumentStripped: NOOP's argument as aiosmtpd passes it", () => {
    const d = dialog("NOOP \r\nNOOP  \r\nNOOP \tx\t\r\n");
    expect(d.events).toEqual([
      { type: "noop", argument: null },
      { type: "noop", argument: "" },
      { type: "noop", argument: "x" },
    ]);
  });
});

describe("replies never echo control bytes", () => {
  it("TestServer_vrfyEchoEscaped: VRFY with terminal escapes is answered printably", () => {
    const d = dialog(bin("VRFY \x00\x01\x1b]0;pwned\x07\r\n"));
    expect(d.output).toBe(
      "220 localhost smtpkit\r\n502 5.1.3 Could not VRFY \\x00\\x01\\x1b]0;pwned\\x07\r\n",
    );
  });

  it("TestServer_unknownVerbEscaped: an unknown verb with NUL and DEL", () => {
    const d = dialog(bin("<<.\x00\x7f\r\n"));
    expect(d.replyLines.at(-1)).toBe('500 5.5.1 Error: command "<<.\\x00\\x7f" not recognized');
  });

  it("TestServer_hookReplyEscaped: a hook's reply text is made printable too", () => {
    const d = dialog("NOOP\r\n", {
      policy: policy({ noop: (_e, conn) => void conn.reply("250 ok\x1b[2J") }),
    });
    expect(d.replyLines.at(-1)).toBe("250 2.0.0 ok\\x1b[2J");
  });

  const echoing = fc.constantFrom("VRFY ", "", "HELP ", "MAIL FROM:", "RCPT TO:", "EHLO ", "X");
  test.prop(
    [
      fc.array(fc.tuple(echoing, fc.uint8Array({ minLength: 1, maxLength: 24 })), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.boolean(),
    ],
    { numRuns: 300 },
  )("TestServer_noControlBytesInReplies", (lines, smtpUtf8) => {
    const d = new Dialog({
      options: { extensions: { smtpUtf8 }, maxUnknownCommands: 100 },
    });
    for (const [prefix, bytes] of lines) {
      if (d.status === "closed") break;
      const clean = bytes.filter((b) => b !== 10);
      d.send(new Uint8Array([...bin(prefix), ...clean, 13, 10]));
    }
    const out = new Uint8Array(d.outputBytes.flatMap((chunk) => [...chunk]));
    for (let i = 0; i < out.length; i++) {
      const byte = out[i] as number;
      if (byte === 13) {
        expect(out[i + 1]).toBe(10);
        i++;
        continue;
      }
      // RFC 5321 textstring: HT and SP..~ (a seed once found `X<HT><NUL>` echoed with its HT).
      expect((byte >= 0x20 || byte === 9) && byte !== 0x7f, `byte ${byte} at ${i}`).toBe(true);
    }
  });
});

describe("LMTP replies per recipient", () => {
  it("TestServer_lmtpWrongReplyCount: the wrong number throws before any state change", () => {
    const d = new Dialog({ options: { lmtp: true }, policy: policy({ bodyEnd: deferAll }) });
    d.send(
      "LHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n.\r\n",
    );
    const before = d.conn.dataToSend();
    expect(() => d.conn.replyPerRecipient(["250 OK", "250 OK", "250 OK"])).toThrow(
      LocalProtocolError,
    );
    expect(() => d.conn.replyPerRecipient([])).toThrow(LocalProtocolError);
    expect(() => d.conn.rejectProxy()).toThrow(LocalProtocolError);
    expect(d.conn.phase).toBe("reply");
    expect(d.conn.inTransaction).toBe(true);
    expect(before.length + d.conn.dataToSend().length).toBe(before.length);
    expect(d.conn.replyPerRecipient(["452 4.2.2 full", "250 2.0.0 ok"])).toBe(452);
    expect(d.resume()).toBe("452 4.2.2 full\r\n250 2.0.0 ok\r\n");
  });

  it("TestServer_replyPerRecipientOnlyForLmtpBodies", () => {
    const d = new Dialog({ policy: policy({ bodyEnd: deferAll }) });
    d.send(`${ENVELOPE}DATA\r\n.\r\n`);
    expect(() => d.conn.replyPerRecipient(["250 OK"])).toThrow(LocalProtocolError);
    expect(d.conn.accept()).toBe(250);
  });
});
