/**
 * The engine's side of the parameter extensions: what each one puts in the `mail` / `rcpt` events,
 * FUTURERELEASE against a given clock, BINARYMIME's hold on DATA across transactions, and
 * properties over random dialogs that use them (any split gives the same events and output;
 * random parameter values only ever get 250, 501, 554 or 555).
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import type { SmtpEvent } from "../src/events.js";
import type { ConnectionOptions } from "../src/options.js";
import { dialog, GOOD_PLAIN_B64 } from "./helpers/dialog.js";

function ofType<T extends SmtpEvent["type"]>(
  events: readonly SmtpEvent[],
  type: T,
): Extract<SmtpEvent, { type: T }>[] {
  return events.filter((e): e is Extract<SmtpEvent, { type: T }> => e.type === type);
}

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);
const ALL: ConnectionOptions = {
  implicitTls: true,
  auth: { mechanisms: ["PLAIN"] },
  extensions: {
    binaryMime: true,
    mtPriority: true,
    deliverBy: true,
    futureRelease: { maxInterval: 3600, now: () => NOW },
    rrvs: true,
  },
};

describe("AUTH=", () => {
  it("is not trusted before AUTH, trusted after; <> is a null submitter", () => {
    const d = dialog(
      [
        "EHLO c\r\nMAIL FROM:<a@example.com> AUTH=boss@example.com\r\nRSET\r\n",
        `AUTH PLAIN ${GOOD_PLAIN_B64}\r\n`,
        "MAIL FROM:<a@example.com> AUTH=boss@example.com\r\nRSET\r\n",
        "MAIL FROM:<a@example.com> AUTH=<>\r\nRSET\r\nMAIL FROM:<a@example.com>\r\n",
      ],
      { options: ALL },
    );
    expect(ofType(d.events, "mail").map((e) => e.auth)).toEqual([
      { submitter: "boss@example.com", trusted: false },
      { submitter: "boss@example.com", trusted: true },
      { submitter: null, trusted: true },
      null,
    ]);
  });

  it("is unknown (555) in clear text when AUTH is only offered under TLS", () => {
    const d = dialog("EHLO c\r\nMAIL FROM:<a@example.com> AUTH=<>\r\n", {
      options: { auth: { mechanisms: ["PLAIN"] } },
    });
    expect(d.replyLines.at(-1)).toBe(
      "555 5.5.4 MAIL FROM parameters not recognized or not implemented",
    );
  });
});

describe("event fields", () => {
  it("MAIL: BODY=BINARYMIME, MT-PRIORITY, BY, HOLDFOR", () => {
    const d = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME MT-PRIORITY=-4 BY=300;RT HOLDFOR=600\r\n",
      { options: ALL },
    );
    const [mail] = ofType(d.events, "mail");
    expect(mail?.body).toBe("BINARYMIME");
    expect(mail?.mtPriority).toBe(-4);
    expect(mail?.deliverBy).toEqual({ seconds: 300, mode: "R", trace: true });
    expect(mail?.futureRelease).toEqual({
      holdFor: 600,
      holdUntil: null,
      releaseAt: new Date(NOW + 600_000),
    });
    expect(d.replyLines.at(-1)).toBe("250 2.1.0 OK");
  });

  it("RCPT: RRVS", () => {
    const d = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com> RRVS=2014-04-03T23:01:00Z;C\r\n",
      { options: ALL },
    );
    expect(ofType(d.events, "rcpt")[0]?.rrvs).toEqual({
      since: new Date(Date.UTC(2014, 3, 3, 23, 1)),
      noSupport: "C",
    });
  });
});

describe("FUTURERELEASE", () => {
  it("advertises the interval and the latest date from the clock", () => {
    let now = NOW;
    const options: ConnectionOptions = {
      extensions: { futureRelease: { maxInterval: 86400, now: () => now } },
    };
    const first = dialog("EHLO c\r\n", { options });
    expect(first.replyLines).toContain("250-FUTURERELEASE 86400 2026-12-05T12:00:00Z");
    now += 1500; // the reply is not cached across time; fractions of a second are dropped
    const second = dialog("EHLO c\r\n", { options });
    expect(second.replyLines).toContain("250-FUTURERELEASE 86400 2026-12-05T12:00:01Z");
  });

  it("true means seven days", () => {
    const d = dialog("EHLO c\r\n", { options: { extensions: { futureRelease: true } } });
    expect(d.replyLines.find((line) => line.startsWith("250-FUTURERELEASE "))).toMatch(
      /^250-FUTURERELEASE 604800 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
  });

  it.each([
    ["HOLDFOR=3600", "250 2.1.0 OK"],
    ["HOLDFOR=3601", "554 5.5.4 Error: release time beyond the advertised maximum"],
    ["HOLDUNTIL=2026-12-04T13:00:00Z", "250 2.1.0 OK"],
    ["HOLDUNTIL=2026-12-04T14:00:00+01:00", "250 2.1.0 OK"],
    [
      "HOLDUNTIL=2026-12-04T13:00:01Z",
      "554 5.5.4 Error: release time beyond the advertised maximum",
    ],
    ["HOLDUNTIL=2020-01-01T00:00:00Z", "250 2.1.0 OK"], // already past: released at once
    [
      "HOLDFOR=60 HOLDUNTIL=2026-12-04T13:00:00Z",
      "501 5.5.4 Error: HOLDFOR and HOLDUNTIL cannot be combined",
    ],
    ["HOLDFOR=-1", "501 5.5.4 Error: bad HOLDFOR or HOLDUNTIL value"],
    ["HOLDUNTIL=tomorrow", "501 5.5.4 Error: bad HOLDFOR or HOLDUNTIL value"],
  ])("MAIL FROM:<a@example.com> %s → %s", (params, reply) => {
    const d = dialog(`EHLO c\r\nMAIL FROM:<a@example.com> ${params}\r\n`, { options: ALL });
    expect(d.replyLines.at(-1)).toBe(reply);
  });

  it("HOLDUNTIL: the release time is the one asked for", () => {
    const d = dialog("EHLO c\r\nMAIL FROM:<a@example.com> HOLDUNTIL=2026-12-04T12:30:00.5Z\r\n", {
      options: ALL,
    });
    const at = new Date(Date.UTC(2026, 11, 4, 12, 30, 0, 500));
    expect(ofType(d.events, "mail")[0]?.futureRelease).toEqual({
      holdFor: null,
      holdUntil: at,
      releaseAt: at,
    });
  });
});

describe("BINARYMIME", () => {
  it("DATA is refused only in the transaction that asked for it", () => {
    const d = dialog(
      [
        "EHLO c\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
        "RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n",
      ],
      { options: ALL },
    );
    expect(d.replyLines.filter((line) => /^(354|503)/.test(line))).toEqual([
      "503 5.5.1 Error: BODY=BINARYMIME needs BDAT, not DATA",
      "354 End data with <CR><LF>.<CR><LF>",
    ]);
  });

  it("a refused MAIL leaves no BINARYMIME behind", () => {
    const d = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME\r\nMAIL FROM:<a@example.com>\r\n",
      {
        options: ALL,
        policy: (event, conn) => {
          if (event.type === "mail" && event.body === "BINARYMIME") conn.reply("550 5.7.1 No");
          else conn.accept();
        },
      },
    );
    expect(d.replyLines.slice(-2)).toEqual(["550 5.7.1 No", "250 2.1.0 OK"]);
    const next = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
      {
        options: ALL,
        policy: (event, conn) => {
          if (event.type === "mail" && event.body === "BINARYMIME") conn.reply("550 5.7.1 No");
          else conn.accept();
        },
      },
    );
    expect(next.replyLines.at(-1)).toBe("354 End data with <CR><LF>.<CR><LF>");
  });

  it("keeps bare CR and LF and NUL in BDAT bodies whatever lineEndings says", () => {
    const d = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME\r\nRCPT TO:<b@example.com>\r\nBDAT 5 LAST\r\n\x00\r\n\n\r",
      { options: { ...ALL, lineEndings: "reject" } },
    );
    expect(d.bodies).toEqual(["\x00\r\n\n\r"]);
    expect(d.replyLines.at(-1)).toBe("250 2.0.0 OK");
  });
});

describe("properties", () => {
  const value = fc.oneof(
    fc.stringMatching(/^[!-<>-~]{1,24}$/),
    fc.constantFrom(
      "<>",
      "a@example.com",
      "e+3Dmc2@example.com",
      "-9",
      "9",
      "10",
      "120;R",
      "0;R",
      "-5;NT",
      "600",
      "3601",
      "2026-12-04T12:30:00Z",
      "2014-04-03T23:01:00Z;C",
      "BINARYMIME",
      "8BITMIME",
    ),
  );
  const mailKeyword = fc.constantFrom("AUTH", "BODY", "MT-PRIORITY", "BY", "HOLDFOR", "HOLDUNTIL");
  const param = (keyword: fc.Arbitrary<string>) =>
    fc
      .tuple(keyword, fc.option(value, { nil: null }))
      .map(([k, v]) => (v === null ? k : `${k}=${v}`));
  const mailLine = fc
    .array(param(mailKeyword), { maxLength: 3 })
    .map((params) => `MAIL FROM:<a@example.com>${params.map((p) => ` ${p}`).join("")}\r\n`);
  const rcptLine = fc
    .array(param(fc.constant("RRVS")), { maxLength: 2 })
    .map((params) => `RCPT TO:<b@example.com>${params.map((p) => ` ${p}`).join("")}\r\n`);
  const piece = fc.oneof(
    mailLine,
    rcptLine,
    fc.constantFrom(
      "EHLO c\r\n",
      "RSET\r\n",
      "DATA\r\nbody\r\n.\r\n",
      "BDAT 3 LAST\r\nabc",
      `AUTH PLAIN ${GOOD_PLAIN_B64}\r\n`,
    ),
  );
  const script = fc.array(piece, { maxLength: 12 }).map((pieces) => `EHLO c\r\n${pieces.join("")}`);
  const sizes = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 });

  test.prop([script, sizes])(
    "a dialog with the extensions, split anyhow, gives the same events and output",
    (text, chunks) => {
      const whole = dialog(text, { options: ALL });
      const split = dialog(text, { options: ALL, chunks });
      expect(split.output).toBe(whole.output);
      expect(split.events).toEqual(whole.events);
    },
  );

  test.prop([
    fc.array(mailLine, { minLength: 1, maxLength: 4 }),
    fc.array(rcptLine, { maxLength: 3 }),
  ])(
    "random parameter values get 250, 501, 503, 554 or 555, never an exception",
    (mails, rcpts) => {
      const text = `EHLO c\r\n${mails.map((m) => `RSET\r\n${m}${rcpts.join("")}`).join("")}`;
      const d = dialog(text, { options: ALL });
      for (const line of d.replyLines.slice(1)) {
        expect(line).toMatch(/^(250|501|503|554|555)[ -]/);
      }
      expect(d.status).toBe("needData");
    },
  );
});
