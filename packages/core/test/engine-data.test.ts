/**
 * DATA framing through the engine (aiosmtpd.md §2.6, beyond.md line-ending policy): transparency,
 * terminator, bare CR/LF policies, the line and size limits with their delayed replies, and body
 * chunks as views of the received memory.
 */
import { describe, expect, it } from "vitest";
import type { BodyChunkEvent, BodyEndEvent } from "../src/events.js";
import type { ConnectionOptions } from "../src/options.js";
import type { LineEndingPolicy } from "../src/syntax/data-reader.js";
import { bin, Dialog, dialog } from "./helpers/dialog.js";

const OPEN = "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n";

/** Sends a body (everything after the 354, terminator included) and returns what came of it. */
function send(body: string, options: ConnectionOptions = {}, chunks?: number) {
  const d = new Dialog({ options, ...(chunks ? { chunks } : {}) });
  d.send(OPEN);
  const before = d.output.length;
  d.send(body);
  const ends = d.events.filter((e): e is BodyEndEvent => e.type === "bodyEnd");
  return {
    dialog: d,
    body: d.bodies[0] ?? null,
    end: ends[0] ?? null,
    reply: d.output.slice(before),
  };
}

describe("end of data", () => {
  it("ends at CRLF . CRLF; the CRLF before the dot belongs to the body", () => {
    const r = send("line one\r\nline two\r\n.\r\n");
    expect(r.body).toBe("line one\r\nline two\r\n");
    expect(r.reply).toBe("250 2.0.0 OK\r\n");
  });

  it("an empty body: no body bytes, size 0", () => {
    const r = send(".\r\n");
    expect(r.body).toBe("");
    expect(r.end).toMatchObject({ error: null, size: 0 });
    expect(r.dialog.events.some((e) => e.type === "bodyChunk")).toBe(false);
  });

  it("a body that is one empty line", () => {
    expect(send("\r\n.\r\n").body).toBe("\r\n");
  });

  it("a body without a final CRLF cannot end: the next CRLF . CRLF does", () => {
    const r = send("no newline.\r\n.\r\n");
    expect(r.body).toBe("no newline.\r\n");
  });

  it("bytes after the terminator are the next command", () => {
    const r = send(".\r\nNOOP\r\n");
    expect(r.reply).toBe("250 2.0.0 OK\r\n250 2.0.0 OK\r\n");
  });

  it.each([
    ["LF . CRLF", "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n"],
    [
      "CRLF . LF (the dot starts a CRLF line, so it is unstuffed)",
      "a\r\n.\nb\r\n.\r\n",
      "a\r\n\nb\r\n",
    ],
    ["LF . LF", "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n"],
    ["CR . CR", "a\r.\rb\r\n.\r\n", "a\r.\rb\r\n"],
    ["CR . CRLF", "a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n"],
    ["CRLF . CR", "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n"],
    ["CRLF . space CRLF", "a\r\n. \r\nb\r\n.\r\n", "a\r\n \r\nb\r\n"],
  ])("%s does not end the body", (_name, input, body) => {
    const r = send(input);
    expect(r.body).toBe(body);
    expect(r.reply).toBe("250 2.0.0 OK\r\n");
  });
});

describe("transparency (dot-unstuffing)", () => {
  it.each([
    ["..x", "..x\r\n.\r\n", ".x\r\n"],
    [".x", ".x\r\n.\r\n", "x\r\n"],
    ["..", "..\r\n.\r\n", ".\r\n"],
    ["...", "...\r\n.\r\n", "..\r\n"],
    ["dot in the middle", "a.b\r\n.\r\n", "a.b\r\n"],
    ["dot after a bare LF is not unstuffed", "a\n..b\r\n.\r\n", "a\n..b\r\n"],
  ])("%s", (_name, input, body) => {
    expect(send(input).body).toBe(body);
  });

  it("size counts the raw octets, stuffing dots included", () => {
    expect(send("..ab\r\n.\r\n").end?.size).toBe(6);
  });
});

describe("bare CR and LF", () => {
  const body = "test\r\nmail\rdelimiters\nsaved\r\n";

  it("allow (the default, aiosmtpd's behaviour): kept byte for byte", () => {
    const r = send(`${body}.\r\n`);
    expect(r.body).toBe(body);
  });

  it("normalize: bare CR and bare LF become CRLF", () => {
    const r = send(`${body}.\r\n`, { lineEndings: "normalize" });
    expect(r.body).toBe("test\r\nmail\r\ndelimiters\r\nsaved\r\n");
    expect(r.reply).toBe("250 2.0.0 OK\r\n");
  });

  it("normalize: a clean body is unchanged", () => {
    const r = send("a\r\nb\r\n.\r\n", { lineEndings: "normalize" });
    expect(r.body).toBe("a\r\nb\r\n");
  });

  it("reject: a clean body is accepted", () => {
    const r = send("a\r\nb\r\n.\r\n", { lineEndings: "reject" });
    expect(r.end?.error).toBe(null);
    expect(r.reply).toBe("250 2.0.0 OK\r\n");
  });

  it.each([
    ["bare LF", "a\nb\r\n.\r\n"],
    ["bare CR", "a\rb\r\n.\r\n"],
    ["CR at the end of a line", "ab\r\r\n.\r\n"],
  ])("reject: %s gets 554 5.6.0 after the dot", (_name, input) => {
    const r = send(input, { lineEndings: "reject" });
    expect(r.end?.error).toBe("bareLineEnding");
    expect(r.reply).toBe(
      "554 5.6.0 Error: bare <CR> or <LF> in message data (see RFC5321 2.3.8)\r\n",
    );
    expect(r.dialog.conn.inTransaction).toBe(false);
  });

  it.each<LineEndingPolicy>(["allow", "normalize", "reject"])(
    "%s: LF . CRLF never ends the body",
    (policy) => {
      const r = send("Testing\n.\r\nNO SMUGGLING\r\n.\r\n", { lineEndings: policy });
      expect(r.dialog.events.filter((e) => e.type === "bodyEnd")).toHaveLength(1);
      expect(r.dialog.events.filter((e) => e.type === "mail")).toHaveLength(1);
      if (policy === "allow") expect(r.body).toBe("Testing\n.\r\nNO SMUGGLING\r\n");
      if (policy === "normalize") expect(r.body).toBe("Testing\r\n.\r\nNO SMUGGLING\r\n");
    },
  );

  it("normalize: a bare CR split from its next byte across chunks", () => {
    for (let size = 1; size <= 6; size++) {
      const r = send("a\rb\r\nc\nd\r\n.\r\n", { lineEndings: "normalize" }, size);
      expect(r.body, `chunks of ${size}`).toBe("a\r\nb\r\nc\r\nd\r\n");
    }
  });
});

describe("line length limit (1001 octets with CRLF, counted before unstuffing)", () => {
  const line = (n: number, prefix = "") => `${prefix}${"a".repeat(n - prefix.length)}\r\n`;

  it("999 data octets are accepted", () => {
    const r = send(`${line(999)}.\r\n`);
    expect(r.end?.error).toBe(null);
    expect(r.body?.length).toBe(1001);
  });

  it("1000 data octets get 500 after the dot", () => {
    const r = send(`${line(1000)}more\r\n.\r\n`);
    expect(r.end?.error).toBe("lineTooLong");
    expect(r.reply).toBe("500 5.5.2 Line too long (see RFC5321 4.5.3.1.6)\r\n");
  });

  it("plain mode: aiosmtpd's text", () => {
    const r = send(`${line(1000)}.\r\n`, { extensions: { enhancedStatusCodes: false } });
    expect(r.reply).toBe("500 Line too long (see RFC5321 4.5.3.1.6)\r\n");
  });

  it("a stuffed dot counts: . + 998 is accepted", () => {
    const r = send(`${line(999, ".")}.\r\n`);
    expect(r.end?.error).toBe(null);
    expect(r.body).toBe(`${"a".repeat(998)}\r\n`);
  });

  it("a stuffed dot counts: .. + 997 is accepted, .. + 998 is too long", () => {
    expect(send(`${line(999, "..")}.\r\n`).end?.error).toBe(null);
    expect(send(`${line(1000, "..")}.\r\n`).end?.error).toBe("lineTooLong");
  });

  it("a stuffed dot before a bare CR counts once", () => {
    const ok = `.\r${"a".repeat(997)}\r\n`;
    expect(ok.length).toBe(1001);
    expect(send(`${ok}.\r\n`).end?.error).toBe(null);
  });

  it("LF-only lines count as one line", () => {
    const r = send(`${"a".repeat(600)}\n${"b".repeat(600)}\r\n.\r\n`);
    expect(r.end?.error).toBe("lineTooLong");
    const many = send(`${"ab\n".repeat(400)}\r\n.\r\n`);
    expect(many.end?.error).toBe("lineTooLong");
  });

  it("the limit is per line: many lines of 999 pass", () => {
    const r = send(`${line(999).repeat(20)}.\r\n`);
    expect(r.end?.error).toBe(null);
  });

  it("nothing is sent before the dot, and the data is discarded after the error", () => {
    const d = new Dialog();
    d.send(OPEN);
    expect(d.send(line(2000))).toBe("");
    expect(d.send("x\r\n")).toBe("");
    expect(d.send(".\r\n")).toBe("500 5.5.2 Line too long (see RFC5321 4.5.3.1.6)\r\n");
    const chunks = d.rawEvents.filter((e): e is BodyChunkEvent => e.type === "bodyChunk");
    expect(chunks.every((c) => !new TextDecoder().decode(c.data).includes("x\r\n"))).toBe(true);
  });

  it("a lineLengthLimit option", () => {
    expect(send(`${line(8)}.\r\n`, { lineLengthLimit: 10 }).end?.error).toBe(null);
    expect(send(`${line(9)}.\r\n`, { lineLengthLimit: 10 }).end?.error).toBe("lineTooLong");
  });
});

describe("size limit", () => {
  it("exactly the limit is accepted", () => {
    const r = send("123456789\r\n.\r\n", { dataSizeLimit: 11 });
    expect(r.end).toMatchObject({ error: null, size: 11 });
  });

  it("one more octet gets 552 after the dot", () => {
    const r = send("1234567890\r\n.\r\n", { dataSizeLimit: 11 });
    expect(r.end).toMatchObject({ error: "tooMuchData" });
    expect(r.reply).toBe("552 5.3.4 Error: Too much mail data\r\n");
  });

  it("plain mode: aiosmtpd's text", () => {
    const r = send("1234567890\r\n.\r\n", {
      dataSizeLimit: 11,
      extensions: { enhancedStatusCodes: false },
    });
    expect(r.reply).toBe("552 Error: Too much mail data\r\n");
  });

  it("stuffing dots count against the limit", () => {
    expect(send("..3456789\r\n.\r\n", { dataSizeLimit: 11 }).end?.error).toBe(null);
    expect(send("..34567890\r\n.\r\n", { dataSizeLimit: 11 }).end?.error).toBe("tooMuchData");
  });

  it("no limit with dataSizeLimit null", () => {
    expect(send(`${"a\r\n".repeat(20000)}.\r\n`, { dataSizeLimit: null }).end?.error).toBe(null);
  });

  it("the first limit crossed wins", () => {
    const longFirst = send(`${"a".repeat(1200)}\r\n${"b".repeat(900)}\r\n.\r\n`, {
      dataSizeLimit: 1500,
    });
    expect(longFirst.end?.error).toBe("lineTooLong");
    const bigFirst = send(
      `${"b".repeat(900)}\r\n${"b".repeat(900)}\r\n${"a".repeat(1200)}\r\n.\r\n`,
      {
        dataSizeLimit: 1500,
      },
    );
    expect(bigFirst.end?.error).toBe("tooMuchData");
  });

  it("a bare line ending and then a size error: the first one wins", () => {
    const r = send("a\nb\r\n1234567890\r\n.\r\n", { dataSizeLimit: 10, lineEndings: "reject" });
    expect(r.end?.error).toBe("bareLineEnding");
  });
});

describe("body chunks are views of the received memory", () => {
  it("a chunk without stuffed dots is a view of the buffer fed in, not a copy", () => {
    const d = new Dialog();
    d.send(OPEN);
    const fed = bin("Subject: views\r\n\r\nno dots here\r\n.\r\n");
    d.conn.receiveData(fed);
    const chunks: BodyChunkEvent[] = [];
    for (;;) {
      const event = d.conn.nextEvent();
      if (event.type === "bodyChunk") chunks.push(event);
      if (event.type === "bodyEnd") break;
    }
    expect(chunks).toHaveLength(1);
    const [chunk] = chunks;
    expect(chunk?.data.buffer).toBe(fed.buffer);
    expect(chunk?.data.byteOffset).toBe(0);
    expect(new TextDecoder().decode(chunk?.data)).toBe("Subject: views\r\n\r\nno dots here\r\n");
  });

  it("stuffed dots split the body into views around them", () => {
    const d = new Dialog();
    d.send(OPEN);
    const fed = bin("a\r\n..b\r\n.\r\n");
    d.conn.receiveData(fed);
    const views: Uint8Array[] = [];
    for (;;) {
      const event = d.conn.nextEvent();
      if (event.type === "bodyChunk") views.push(event.data);
      if (event.type === "bodyEnd") break;
    }
    expect(views.every((v) => v.buffer === fed.buffer)).toBe(true);
    expect(views.map((v) => new TextDecoder().decode(v)).join("")).toBe("a\r\n.b\r\n");
  });

  it("body bytes of a chunk fed after DATA keep their offset in that chunk", () => {
    const d = new Dialog();
    const fed = bin(`${OPEN}body\r\n.\r\n`);
    d.conn.receiveData(fed);
    let view: Uint8Array | null = null;
    for (;;) {
      const event = d.conn.nextEvent();
      if (event.type === "needData") break;
      if (event.type === "bodyChunk") view = event.data;
      if (["hello", "mail", "rcpt", "bodyEnd"].includes(event.type)) d.conn.accept();
    }
    expect(view?.buffer).toBe(fed.buffer);
    expect(view?.byteOffset).toBe(OPEN.length);
  });
});

describe("BDAT bodies", () => {
  it("are taken verbatim: no unstuffing, no terminator", () => {
    const content = "..x\r\n.\r\nQUIT\r\n";
    const d = dialog(
      `EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT ${content.length} LAST\r\n${content}`,
    );
    expect(d.bodies).toEqual([content]);
    expect(d.replyLines.at(-1)).toBe("250 2.0.0 OK");
  });

  it("exactly the size limit over several chunks is accepted", () => {
    const d = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 4\r\nabcdBDAT 6 LAST\r\nefghij",
      { options: { dataSizeLimit: 10 } },
    );
    expect(d.bodies).toEqual(["abcdefghij"]);
  });

  it("a chunk over the limit: its bytes are discarded and the body ends with an error", () => {
    const d = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 4\r\nabcdBDAT 8 LAST\r\nNOOP\r\n\r\n",
      { options: { dataSizeLimit: 10 } },
    );
    const end = d.events.find((e): e is BodyEndEvent => e.type === "bodyEnd");
    expect(end?.error).toBe("tooMuchData");
    expect(d.replyLines.slice(-2)).toEqual([
      "250 2.0.0 OK: 4 octets received",
      "552 5.3.4 Error: Too much mail data",
    ]);
    expect(d.events.some((e) => e.type === "noop")).toBe(false);
  });
});
