/**
 * Property tests of the engine (design/anchors.md, h11 style):
 *  1. any split of the input into chunks gives the same events (bodyChunk merged) and output;
 *  2. dot-stuffing then DATA unstuffing is the identity;
 *  3. smuggling variants injected into a body never end it;
 *  4. bytes after a STARTTLS line never become events; after tlsEstablished() only new input counts;
 *  5. buffered bytes stay within the line bound plus one chunk when data is fed on needData;
 *  6. pipelined and one-command-at-a-time dialogs give the same replies in the same order;
 *  7. random input only ever yields events — no exception — and the driver always finishes.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import type { SmtpEvent } from "../src/events.js";
import type { ConnectionOptions } from "../src/options.js";
import {
  bin,
  concat,
  Dialog,
  dialog,
  goldenParts,
  latin1,
  optionsFor,
  type Policy,
  policy,
} from "./helpers/dialog.js";
import { GOLDEN_SECTIONS, policyFor } from "./helpers/golden-files.js";

const OPEN = "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n";
const sizesArb = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 });

/** Events for comparison: bodies that ended in an error are to be discarded, so their bytes are dropped. */
function comparable(events: readonly SmtpEvent[]): SmtpEvent[] {
  const out: SmtpEvent[] = [];
  let body: SmtpEvent[] = [];
  for (const event of events) {
    if (event.type === "bodyChunk") {
      body.push(event);
      continue;
    }
    if (event.type === "bodyEnd" && event.error !== null) body = [];
    out.push(...body, event);
    body = [];
  }
  out.push(...body);
  return out;
}

/** Reference transparency: one leading dot removed from every CRLF-delimited line. */
function unstuff(text: string): string {
  return text
    .split("\r\n")
    .map((line) => (line.startsWith(".") ? line.slice(1) : line))
    .join("\r\n");
}

/** Reference dot-stuffing (RFC 5321 §4.5.2): a dot doubled at the start of every CRLF line. */
function stuff(text: string): string {
  return text
    .split("\r\n")
    .map((line) => (line.startsWith(".") ? `.${line}` : line))
    .join("\r\n");
}

/** A random dialog script built from command-like pieces (some valid, some not). */
const pieceArb = fc.oneof(
  fc.constantFrom(
    "HELO c\r\n",
    "EHLO c\r\n",
    "MAIL FROM:<a@example.com>\r\n",
    "MAIL FROM:<a@example.com> SIZE=10 BODY=8BITMIME\r\n",
    "RCPT TO:<b@example.com>\r\n",
    "RCPT TO:<b@example.com> NOTIFY=NEVER\r\n",
    "DATA\r\n",
    "hello\r\n..stuffed\r\n.\r\n",
    "BDAT 5\r\nhello",
    "BDAT 3 LAST\r\nabc",
    "RSET\r\n",
    "NOOP x\r\n",
    "VRFY <v@example.com>\r\n",
    "HELP\r\n",
    "EXPN x\r\n",
    "XYZZY\r\n",
    "\r\n",
    "MAIL FROM:<@bad>\r\n",
    "NOOP\n",
    "AUTH PLAIN\r\n",
    "AHVzZXIAcGFzc3dvcmQ=\r\n",
    "*\r\n",
  ),
  fc.string({ maxLength: 20 }).map((text) => `${text.replace(/[^\x20-\x7e]/g, "")}\r\n`),
);
const scriptArb = fc.array(pieceArb, { maxLength: 25 }).map((pieces) => pieces.join(""));

describe("1. chunking does not matter", () => {
  test.prop([fc.integer({ min: 0, max: GOLDEN_SECTIONS.length - 1 }), fc.boolean(), sizesArb])(
    "any golden dialog, split anyhow, gives the same events and output",
    (index, plain, sizes) => {
      const section = GOLDEN_SECTIONS[index];
      if (!section) throw new Error("no section");
      const mode = plain && section.modes.includes("plain") ? "plain" : "enhanced";
      const options = {
        options: optionsFor(section, mode),
        ...(policyFor(section) ? { policy: policyFor(section) } : {}),
      };
      const whole = dialog(goldenParts(section), options);
      const split = dialog(goldenParts(section), { ...options, chunks: sizes });
      expect(split.output).toBe(whole.output);
      expect(comparable(split.events)).toEqual(comparable(whole.events));
    },
  );

  test.prop([scriptArb, sizesArb, fc.boolean()])(
    "a random script, split anyhow, gives the same events and output",
    (script, sizes, authOn) => {
      const options: ConnectionOptions = authOn
        ? { implicitTls: true, auth: { mechanisms: ["PLAIN"] }, dataSizeLimit: 40 }
        : { dataSizeLimit: 40 };
      const whole = dialog(script, { options });
      const split = dialog(script, { options, chunks: sizes });
      expect(split.output).toBe(whole.output);
      expect(comparable(split.events)).toEqual(comparable(whole.events));
    },
  );
});

describe("2. transparency", () => {
  const bodyArb = fc
    .array(
      fc.oneof(
        fc.constantFrom(".", "..", "\r\n", "\r", "\n", ".\r\n", "\r\n."),
        fc.string({ maxLength: 8 }),
      ),
      {
        maxLength: 30,
      },
    )
    .map(
      (parts) =>
        `${Array.from(parts.join(""), (c) => (c.charCodeAt(0) > 255 ? "?" : c)).join("")}\r\n`,
    );

  test.prop([bodyArb, sizesArb])(
    "dot-stuff then DATA-unstuff is the identity for any body ending in CRLF",
    (body, sizes) => {
      const d = dialog([OPEN, `${stuff(body)}.\r\n`], {
        options: { lineLengthLimit: 0, dataSizeLimit: null },
        chunks: sizes,
      });
      expect(d.bodies).toEqual([body]);
      expect(d.replyLines.at(-1)).toBe("250 2.0.0 OK");
    },
  );

  test.prop([fc.uint8Array({ maxLength: 300 }), sizesArb])(
    "also for arbitrary bytes",
    (bytes, sizes) => {
      const body = `${latin1(bytes)}\r\n`;
      const d = dialog([OPEN, `${stuff(body)}.\r\n`], {
        options: { lineLengthLimit: 0, dataSizeLimit: null },
        chunks: sizes,
      });
      expect(d.bodies).toEqual([body]);
    },
  );
});

describe("3. smuggling variants never end a body", () => {
  const injected = fc.constantFrom("\n.\r\n", "\r\n.\n", "\r.\r", "\n.\n", "\r.\n", "\n.\r");
  const commandish = fc.constantFrom(
    "MAIL FROM:<evil@example.com>\r\n",
    "RCPT TO:<evil@example.com>\r\n",
    "DATA\r\n",
    "RSET\r\n",
    "QUIT\r\n",
    "text",
    "\r\n",
  );
  const bodyArb = fc
    .array(fc.oneof(injected, commandish), { minLength: 1, maxLength: 12 })
    .map((parts) => parts.join(""))
    .filter((body) => !`\r\n${body}\r\n`.includes("\r\n.\r\n"));

  test.prop([bodyArb, sizesArb, fc.constantFrom("allow", "normalize", "reject")])(
    "the whole injected text arrives as body; only CRLF . CRLF ends it",
    (body, sizes, lineEndings) => {
      const d = dialog([OPEN, `${body}\r\n.\r\nNOOP\r\n`], {
        options: { lineEndings: lineEndings as "allow" | "normalize" | "reject" },
        chunks: sizes,
      });
      const types = d.events.map((e) => e.type).filter((t) => t !== "bodyChunk");
      expect(types).toEqual(["hello", "mail", "rcpt", "dataStart", "bodyEnd", "noop"]);
      const expected = unstuff(`${body}\r\n`);
      if (lineEndings === "allow") expect(d.bodies).toEqual([expected]);
      if (lineEndings === "normalize")
        expect(d.bodies).toEqual([expected.replace(/\r\n|\r|\n/g, "\r\n")]);
      if (lineEndings === "reject") {
        const bare = /\r(?!\n)|(?<!\r)\n/.test(expected);
        const end = d.events.find((e) => e.type === "bodyEnd");
        expect(end?.type === "bodyEnd" && end.error).toBe(bare ? "bareLineEnding" : null);
      }
    },
  );
});

describe("4. STARTTLS", () => {
  const before = fc.array(fc.constantFrom("EHLO c\r\n", "NOOP\r\n", "RSET\r\n", "HELP\r\n"), {
    maxLength: 3,
  });
  const garbage = fc
    .array(
      fc.oneof(
        fc.constantFrom(
          "NOOP\r\n",
          "EHLO evil\r\n",
          "MAIL FROM:<x@y>\r\n",
          "QUIT\r\n",
          "STARTTLS\r\n",
          "AUTH PLAIN AAAA\r\n",
        ),
        fc.uint8Array({ maxLength: 40 }).map(latin1),
      ),
      { maxLength: 8 },
    )
    .map((parts) => parts.join(""));

  test.prop([before, garbage, garbage, sizesArb])(
    "bytes after the STARTTLS line, in its chunk or later, never become events",
    (prefix, sameChunk, later, sizes) => {
      const d = new Dialog({ options: { startTls: true }, chunks: sizes });
      d.send(`${prefix.join("")}STARTTLS\r\n${sameChunk}`);
      const count = d.rawEvents.length;
      const output = d.output;
      expect(d.rawEvents.at(-1)?.type).toBe("startTls");
      expect(d.output.endsWith("220 2.0.0 Ready to start TLS\r\n")).toBe(true);
      d.send(later);
      expect(d.rawEvents.length).toBe(count);
      expect(d.output).toBe(output);
      expect(d.conn.bufferedBytes).toBe(0);
      expect(d.status).toBe("paused");

      d.send({ tls: true });
      expect(d.conn.bufferedBytes).toBe(0);
      expect(d.send("NOOP\r\n")).toBe("250 2.0.0 OK\r\n");
      expect(d.rawEvents.slice(count).map((e) => e.type)).toEqual(["noop"]);
    },
  );

  test.prop([garbage])(
    "a partial line before STARTTLS completes is not glued to later input",
    (tail) => {
      const d = new Dialog({ options: { startTls: true } });
      d.send(`STARTTLS\r\n${tail}NOO`);
      d.send({ tls: true });
      expect(d.send("P\r\n")).toBe('500 5.5.1 Error: command "P" not recognized\r\n');
    },
  );
});

describe("5. bounded buffering", () => {
  const inputArb = fc
    .array(
      fc.oneof(
        fc.integer({ min: 1, max: 30_000 }).map((n) => "x".repeat(n)),
        fc.integer({ min: 1, max: 30_000 }).map((n) => `AUTH PLAIN ${"A".repeat(n)}`),
        fc.constantFrom(
          "\r\n",
          "\n",
          "NOOP\r\n",
          "EHLO c\r\n",
          OPEN,
          ".\r\n",
          "MAIL FROM:<a@b>\r\n",
        ),
      ),
      { maxLength: 10 },
    )
    .map((parts) => parts.join(""));

  test.prop([inputArb, fc.integer({ min: 1, max: 8192 })], { numRuns: 40 })(
    "bufferedBytes never exceeds the line bound plus one chunk",
    (input, chunk) => {
      const d = dialog(input, {
        options: { implicitTls: true, auth: { mechanisms: ["PLAIN"] } },
        chunks: chunk,
      });
      // AUTH lines may be 12288 octets plus CRLF (RFC 4954 §4); other lines far less.
      expect(d.maxBuffered).toBeLessThanOrEqual(12290 + chunk);
    },
    60_000,
  );

  test.prop([fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 4096 })], {
    numRuns: 40,
  })(
    "a command line without LF: bounded by 1001 plus one chunk",
    (length, chunk) => {
      const d = dialog(`NOOP ${"x".repeat(length)}`, { chunks: chunk });
      expect(d.maxBuffered).toBeLessThanOrEqual(1001 + chunk);
    },
    60_000,
  );

  test.prop([fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 1, max: 4096 })], {
    numRuns: 40,
  })("a PROXY header: bounded by 107 plus one chunk for v1", (length, chunk) => {
    const d = dialog(`PROXY ${"x".repeat(length)}`, {
      chunks: chunk,
      options: { proxyProtocol: true },
    });
    expect(d.maxBuffered).toBeLessThanOrEqual(107 + chunk);
  });
});

describe("6. pipelining does not change the replies", () => {
  test.prop([fc.array(pieceArb, { maxLength: 25 })])(
    "a generated command list: all at once or one piece at a time",
    (pieces) => {
      const options: ConnectionOptions = { implicitTls: true, auth: { mechanisms: ["PLAIN"] } };
      const batch = dialog(pieces.join(""), { options });
      const stepwise = new Dialog({ options });
      for (const piece of pieces) if (stepwise.status !== "closed") stepwise.send(piece);
      expect(stepwise.output).toBe(batch.output);
      expect(comparable(stepwise.events)).toEqual(comparable(batch.events));
    },
  );

  // Model-based: a small model of the SMTP state predicts each reply code; the script that ran one
  // command at a time is then replayed pipelined and must give the same bytes.
  interface Model {
    greeted: boolean;
    mail: boolean;
    rcpts: number;
    closed: boolean;
  }
  interface Real {
    d: Dialog;
    script: string[];
  }
  type SmtpCommand = fc.Command<Model, Real>;

  const command = (
    name: string,
    line: string,
    expected: (m: Model) => number[],
    next: (m: Model) => void,
  ): SmtpCommand => ({
    check: (m) => !m.closed,
    run: (m, r) => {
      const codes =
        r.d
          .send(line)
          .match(/^\d{3}(?= )/gm)
          ?.map(Number) ?? [];
      r.script.push(line);
      expect(codes, `${name} in ${JSON.stringify(m)}`).toEqual(expected(m));
      next(m);
    },
    toString: () => name,
  });

  const commands = [
    fc.constant(
      command(
        "HELO",
        "HELO c\r\n",
        () => [250],
        (m) => Object.assign(m, { greeted: true, mail: false, rcpts: 0 }),
      ),
    ),
    fc.constant(
      command(
        "EHLO",
        "EHLO c\r\n",
        () => [250],
        (m) => Object.assign(m, { greeted: true, mail: false, rcpts: 0 }),
      ),
    ),
    fc.constant(
      command(
        "MAIL",
        "MAIL FROM:<a@example.com>\r\n",
        (m) => [!m.greeted || m.mail ? 503 : 250],
        (m) => {
          if (m.greeted) m.mail = true;
        },
      ),
    ),
    fc.constant(
      command(
        "RCPT",
        "RCPT TO:<b@example.com>\r\n",
        (m) => [!m.greeted || !m.mail ? 503 : 250],
        (m) => {
          if (m.greeted && m.mail) m.rcpts++;
        },
      ),
    ),
    fc.constant(
      command(
        "DATA",
        "DATA\r\nbody\r\n.\r\n",
        (m) => (!m.greeted || m.rcpts === 0 ? [503, 500, 500] : [354, 250]),
        (m) => {
          if (m.greeted && m.rcpts > 0) Object.assign(m, { mail: false, rcpts: 0 });
        },
      ),
    ),
    fc.constant(
      command(
        "RSET",
        "RSET\r\n",
        () => [250],
        (m) => Object.assign(m, { mail: false, rcpts: 0 }),
      ),
    ),
    fc.constant(
      command(
        "NOOP",
        "NOOP\r\n",
        () => [250],
        () => {},
      ),
    ),
    fc.constant(
      command(
        "VRFY",
        "VRFY <x@example.com>\r\n",
        () => [252],
        () => {},
      ),
    ),
    fc.constant(
      command(
        "QUIT",
        "QUIT\r\n",
        () => [221],
        (m) => Object.assign(m, { closed: true }),
      ),
    ),
  ];

  test.prop([fc.commands(commands, { maxCommands: 30 })])(
    "fc.commands: replies follow the model, one at a time and pipelined",
    (cmds) => {
      // Failed DATA lines are unknown commands; keep them from closing the session.
      const options: ConnectionOptions = { maxUnknownCommands: 1000 };
      const real: Real = { d: new Dialog({ options }), script: [] };
      fc.modelRun(
        () => ({ model: { greeted: false, mail: false, rcpts: 0, closed: false }, real }),
        cmds,
      );
      const pipelined = dialog(real.script.join(""), { options });
      expect(pipelined.output).toBe(real.d.output);
    },
  );
});

describe("7. random input never throws and always finishes", () => {
  const optionsArb: fc.Arbitrary<ConnectionOptions> = fc.record(
    {
      lmtp: fc.boolean(),
      proxyProtocol: fc.boolean(),
      startTls: fc.boolean(),
      requireStartTls: fc.boolean(),
      implicitTls: fc.boolean(),
      dataSizeLimit: fc.constantFrom(0, 10, 100, null),
      lineLengthLimit: fc.constantFrom(10, 1001),
      lineEndings: fc.constantFrom("allow", "normalize", "reject"),
      commandCallLimit: fc.constantFrom(null, 3, { "*": 2, NOOP: 5 }),
      maxRecipients: fc.constantFrom(0, 2),
      extensions: fc.record(
        {
          smtpUtf8: fc.boolean(),
          dsn: fc.boolean(),
          chunking: fc.boolean(),
          enhancedStatusCodes: fc.boolean(),
          requireTls: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      auth: fc.record({
        mechanisms: fc.constant(["PLAIN", "LOGIN"]),
        required: fc.boolean(),
        requireTls: fc.boolean(),
      }),
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<ConnectionOptions>;

  const linesArb = fc
    .array(
      fc.oneof(
        pieceArb,
        fc.constantFrom(
          "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
          "PROXY UNKNOWN\r\n",
          "LHLO c\r\n",
          "STARTTLS\r\n",
          "BDAT 0 LAST\r\n",
          "BDAT 99999999999 LAST\r\n",
          "AUTH LOGIN\r\n",
          "AUTH PLAIN =\r\n",
          "MAIL FROM:<a@b> SMTPUTF8 RET=FULL ENVID=x+41 REQUIRETLS\r\n",
          "RCPT TO:<a@b> NOTIFY=SUCCESS ORCPT=rfc822;a+40b\r\n",
        ),
        fc.uint8Array({ maxLength: 64 }).map(latin1),
      ),
      { maxLength: 30 },
    )
    .map((parts) => parts.join(""));

  const refuseAll: Policy = policy({
    hello: (_e, conn) => void conn.reply("550 5.7.1 no"),
    mail: (_e, conn) => void conn.reply("550 5.7.1 no"),
    rcpt: (_e, conn) => void conn.reply("550 5.1.1 no"),
    bodyEnd: (_e, conn) => void conn.reply("554 5.6.0 no"),
    auth: (_e, conn) => conn.challenge("more"),
    authResponse: (_e, conn) => conn.completeAuth(false),
    proxyHeader: (_e, conn) => void conn.rejectProxy(),
  });

  test.prop([optionsArb, linesArb, sizesArb, fc.boolean(), fc.boolean()], { numRuns: 300 })(
    "random command-like lines and bytes, any options: events only, and the driver finishes",
    (options, input, sizes, refuse, tlsAfterPause) => {
      const maxSteps = 20 * (2 * input.length + 40);
      const d = new Dialog({
        options,
        chunks: sizes,
        maxSteps,
        ...(refuse ? { policy: refuseAll } : {}),
      });
      d.send(input);
      if (d.status === "paused" && tlsAfterPause) {
        d.send({ tls: true });
        d.send(input);
      }
      if (d.status === "needData") d.send({ eof: true });
      expect(["needData", "paused", "closed"]).toContain(d.status);
      if (d.status !== "paused") expect(d.status).toBe("closed");
      expect(d.steps).toBeLessThanOrEqual(maxSteps);
    },
  );

  test.prop([fc.uint8Array({ maxLength: 2000 }), sizesArb, optionsArb], { numRuns: 300 })(
    "random bytes: events only, and the driver finishes",
    (bytes, sizes, options) => {
      const d = new Dialog({ options, chunks: sizes, maxSteps: 20 * (bytes.length + 20) });
      d.send(bytes);
      expect(["needData", "paused", "closed"]).toContain(d.status);
      for (const event of d.rawEvents) expect(typeof event.type).toBe("string");
    },
  );

  test.prop([fc.uint8Array({ maxLength: 500 }), sizesArb])(
    "random bytes inside DATA: the body ends only at CRLF . CRLF",
    (bytes, sizes) => {
      const text = latin1(bytes);
      const d = dialog([OPEN, `${text}\r\n.\r\n`], {
        chunks: sizes,
        options: { lineLengthLimit: 0, dataSizeLimit: null },
      });
      const full = `\r\n${text}\r\n.\r\n`;
      const bodyText = full.slice(2, full.indexOf("\r\n.\r\n") + 2);
      expect(d.bodies[0]).toBe(unstuff(bodyText));
    },
  );
});

// Keep `bin`/`concat` referenced for helpers used in ad-hoc debugging of counterexamples.
void bin;
void concat;
