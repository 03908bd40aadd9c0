import type { SMTP } from "@smtpkit/core/server";
import { describe, expect, it } from "vitest";
import { Debugging, Sink, UsageError } from "../src/index.js";
import { Collector, dedent, encode, makeEnvelope, makeSession } from "./helpers.js";

// The message aiosmtpd's TestDebugging sends with smtplib (which turns \n into \r\n).
const MESSAGE = [
  "From: Anne Person <anne@example.com>",
  "To: Bart Person <bart@example.com>",
  "Subject: A test",
  "",
  "Testing",
  "",
].join("\r\n");

const PEER = { address: "127.0.0.1", port: 54321, family: "IPv4" } as const;
const PEER_REPR = "('127.0.0.1', 54321)";

async function run(
  envelopeFields: Parameters<typeof makeEnvelope>[0],
  peer: Parameters<typeof makeSession>[0] = PEER,
) {
  const out = new Collector();
  const handler = new Debugging(out);
  const reply = await handler.handleDATA(
    {} as SMTP,
    makeSession(peer),
    makeEnvelope(envelopeFields),
  );
  return { reply, text: out.text, writes: out.writes };
}

describe("Debugging: aiosmtpd's TestDebugging expectations", () => {
  it("test_debugging (decode_data=True: str content)", async () => {
    const { reply, text } = await run({ mailOptions: ["SIZE=102"], content: MESSAGE });
    expect(reply).toBe("250 OK");
    expect(text).toBe(
      dedent(`
        ---------- MESSAGE FOLLOWS ----------
        mail options: ['SIZE=102']

        From: Anne Person <anne@example.com>
        To: Bart Person <bart@example.com>
        Subject: A test
        X-Peer: ${PEER_REPR}

        Testing
        ------------ END MESSAGE ------------
      `),
    );
  });

  it("test_debugging_bytes", async () => {
    const { text } = await run({ mailOptions: ["SIZE=102"], content: encode(MESSAGE) });
    expect(text).toBe(
      dedent(`
        ---------- MESSAGE FOLLOWS ----------
        mail options: ['SIZE=102']

        From: Anne Person <anne@example.com>
        To: Bart Person <bart@example.com>
        Subject: A test
        X-Peer: ${PEER_REPR}

        Testing
        ------------ END MESSAGE ------------
      `),
    );
  });

  it("test_debugging_without_options (HELO: no mail options line, no separator)", async () => {
    const { text } = await run({ content: encode(MESSAGE) });
    expect(text).toBe(
      dedent(`
        ---------- MESSAGE FOLLOWS ----------
        From: Anne Person <anne@example.com>
        To: Bart Person <bart@example.com>
        Subject: A test
        X-Peer: ${PEER_REPR}

        Testing
        ------------ END MESSAGE ------------
      `),
    );
  });

  it("test_debugging_with_options", async () => {
    const { text } = await run({
      mailOptions: ["SIZE=102", "BODY=7BIT"],
      content: encode(MESSAGE),
    });
    expect(text).toBe(
      dedent(`
        ---------- MESSAGE FOLLOWS ----------
        mail options: ['SIZE=102', 'BODY=7BIT']

        From: Anne Person <anne@example.com>
        To: Bart Person <bart@example.com>
        Subject: A test
        X-Peer: ${PEER_REPR}

        Testing
        ------------ END MESSAGE ------------
      `),
    );
  });
});

describe("Debugging: details of Python's print/splitlines/repr", () => {
  it("writes the whole block with one write()", async () => {
    const { writes } = await run({ content: encode(MESSAGE) });
    expect(writes).toBe(1);
  });

  it("prints no X-Peer line when there is no empty line", async () => {
    const { text } = await run({ content: encode("Subject: x\r\nno body separator\r\n") });
    expect(text).toBe(
      "---------- MESSAGE FOLLOWS ----------\nSubject: x\nno body separator\n------------ END MESSAGE ------------\n",
    );
  });

  it("inserts X-Peer only before the first empty line", async () => {
    const { text } = await run({ content: encode("A: 1\r\n\r\nbody\r\n\r\nmore\r\n") });
    expect(text.match(/X-Peer/g)).toHaveLength(1);
    expect(text).toContain(`A: 1\nX-Peer: ${PEER_REPR}\n\nbody\n\nmore\n`);
  });

  it("an empty first line puts X-Peer first", async () => {
    const { text } = await run({ content: encode("\r\nbody") });
    expect(text).toBe(
      `---------- MESSAGE FOLLOWS ----------\nX-Peer: ${PEER_REPR}\n\nbody\n------------ END MESSAGE ------------\n`,
    );
  });

  it("empty content prints only the frame", async () => {
    const { text } = await run({ content: new Uint8Array() });
    expect(text).toBe(
      "---------- MESSAGE FOLLOWS ----------\n------------ END MESSAGE ------------\n",
    );
  });

  it("bytes: CRLF, bare CR and bare LF all end a line; a last line without EOL is printed", async () => {
    const { text } = await run({ content: encode("a\rb\nc\r\n\nd") });
    expect(text).toContain(`a\nb\nc\nX-Peer: ${PEER_REPR}\n\nd\n---`);
  });

  it("bytes: VT/FF do not split (bytes.splitlines), str content does (str.splitlines)", async () => {
    const bytes = await run({ content: encode("a\vb\fc\x1cd\r\n") });
    expect(bytes.text).toContain("a\vb\fc\x1cd\n");
    const str = await run({ content: "a\vb\fc\x1cd\x85e\u2028f\r\n" });
    expect(str.text).toContain("a\nb\nc\nd\ne\nf\n---");
  });

  it("bytes: invalid UTF-8 becomes U+FFFD, a BOM is kept", async () => {
    const content = new Uint8Array([0xef, 0xbb, 0xbf, 0x41, 0xff, 0x42, 0x0d, 0x0a, 0xc3, 0xa9]);
    const { text } = await run({ content });
    expect(text).toContain("\ufeffA\ufffdB\né\n");
  });

  it("prints rcpt options when any is non-empty", async () => {
    const { text } = await run({
      rcptOptions: ["NOTIFY=NEVER"],
      mailOptions: [],
      content: encode("A: 1\r\n"),
    });
    expect(text).toBe(
      "---------- MESSAGE FOLLOWS ----------\nrcpt options: ['NOTIFY=NEVER']\n\nA: 1\n------------ END MESSAGE ------------\n",
    );
    const empty = await run({ rcptOptions: ["", ""], content: encode("A: 1\r\n") });
    expect(empty.text).not.toContain("rcpt options");
  });

  it("mail options use Python's list repr (quotes, escapes)", async () => {
    const { text } = await run({ mailOptions: ["SIZE=1", "X=it's", "Y=\\"], content: null });
    expect(text).toBe(
      `---------- MESSAGE FOLLOWS ----------\nmail options: ['SIZE=1', "X=it's", 'Y=\\\\']\n\n------------ END MESSAGE ------------\n`,
    );
  });

  it.each([
    [{ address: "::1", port: 2525, family: "IPv6" } as const, "('::1', 2525, 0, 0)"],
    [
      { address: "::ffff:127.0.0.1", port: 1, family: "IPv6" } as const,
      "('::ffff:127.0.0.1', 1, 0, 0)",
    ],
    [{ address: "fe80::1%2", port: 25, family: "IPv6" } as const, "('fe80::1%2', 25, 0, 2)"],
    [{ address: "", port: 0, family: "unix" } as const, "''"],
    [null, "None"],
  ])("X-Peer for %j is %s", async (peer, expected) => {
    const { text } = await run({ content: encode("A: 1\r\n\r\nB\r\n") }, peer);
    expect(text).toContain(`\nX-Peer: ${expected}\n\n`);
  });

  it("writes to stdout by default", () => {
    expect(new Debugging().stream).toBe(process.stdout);
  });
});

describe("fromCli: aiosmtpd's TestCLI", () => {
  it("test_debugging_no_args", () => {
    expect(Debugging.fromCli([]).stream).toBe(process.stdout);
  });
  it("test_debugging_stdout", () => {
    expect(Debugging.fromCli(["stdout"]).stream).toBe(process.stdout);
  });
  it("test_debugging_stderr", () => {
    expect(Debugging.fromCli(["stderr"]).stream).toBe(process.stderr);
  });
  it.each([[["foo", "bar"]], [["stdfoo"]], [["stdout", "stderr"]]])(
    "test_debugging_two_args / bad_argument %j",
    (args) => {
      expect(() => Debugging.fromCli(args)).toThrow(
        new UsageError("Debugging usage: [stdout|stderr]"),
      );
      expect(() => Debugging.fromCli(args)).toThrow(UsageError);
    },
  );
  it("test_sink_no_args", () => {
    expect(Sink.fromCli([])).toBeInstanceOf(Sink);
  });
  it("test_sink_any_args", () => {
    expect(() => Sink.fromCli(["foo"])).toThrow(
      new UsageError("Sink handler does not accept arguments"),
    );
  });
  it("Sink has no hooks at all (every default applies)", () => {
    const sink = new Sink();
    const names = new Set<string>();
    for (let o: object | null = sink; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      for (const n of Object.getOwnPropertyNames(o)) if (n !== "constructor") names.add(n);
    }
    expect([...names]).toEqual([]);
  });
});
