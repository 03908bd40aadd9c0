/**
 * The MAIL/RCPT parameter extensions over real sockets: what handleMAIL, handleRCPT and
 * handleDATA see on the envelope, what is refused, with a raw socket (BDAT with binary bytes) and
 * Python's smtplib (mail_options / rcpt_options, as a real client sends them).
 */
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import type { Envelope, Handler, SmtpServer } from "../src/index.js";
import { servedForEachTest } from "./served.js";

const served = servedForEachTest();
const PYTHON = "/usr/bin/python3";
const python = spawnSync(PYTHON, ["-c", "import smtplib"]);
const pythonMissing = python.status !== 0;

interface Seen {
  readonly hook: string;
  readonly auth: Envelope["auth"];
  readonly bodyType: Envelope["bodyType"];
  readonly mtPriority: Envelope["mtPriority"];
  readonly deliverBy: Envelope["deliverBy"];
  readonly futureRelease: Envelope["futureRelease"];
  readonly rrvs: Record<string, unknown>;
  readonly content?: string;
}

/** A handler that records the envelope's extension fields in every hook. */
function recorder(): Handler & { seen: Seen[] } {
  const seen: Seen[] = [];
  const look = (hook: string, envelope: Envelope, extra: Partial<Seen> = {}) =>
    seen.push({
      hook,
      auth: envelope.auth,
      bodyType: envelope.bodyType,
      mtPriority: envelope.mtPriority,
      deliverBy: envelope.deliverBy,
      futureRelease: envelope.futureRelease,
      rrvs: Object.fromEntries(envelope.rrvs),
      ...extra,
    });
  return {
    seen,
    handleMAIL(_server, _session, envelope, address) {
      look("MAIL", envelope);
      return address.startsWith("refused@") ? "550 5.7.1 Not from you" : undefined;
    },
    handleRCPT(_server, _session, envelope, address) {
      look("RCPT", envelope);
      return address.startsWith("refused@") ? "550 5.1.1 No such user" : undefined;
    },
    handleDATA(_server, _session, envelope) {
      const content = envelope.content as Uint8Array;
      look("DATA", envelope, { content: Buffer.from(content).toString("latin1") });
      return "250 2.0.0 Stored";
    },
  };
}

const EXTENSIONS = {
  binaryMime: true,
  mtPriority: "MIXER",
  deliverBy: { minimum: 30 },
  futureRelease: { maxInterval: 86400 },
  rrvs: true,
} as const;

async function startAll(handler: Handler): Promise<SmtpServer> {
  return served.start(handler, {
    host: "127.0.0.1",
    maxRecipients: 5,
    authRequireTls: false,
    authenticator: () => ({ success: true }),
    extensions: EXTENSIONS,
  });
}

describe("extensions over a raw socket", () => {
  it("EHLO advertises them; LIMITS names the recipient limit", async () => {
    const server = await startAll(recorder());
    const client = await served.open(server);
    await client.reply();
    const ehlo = (await client.command("EHLO client.test")).split("\n");
    expect(ehlo).toEqual(
      expect.arrayContaining([
        "250-CHUNKING",
        "250-BINARYMIME",
        "250-LIMITS RCPTMAX=5",
        "250-MT-PRIORITY MIXER",
        "250-DELIVERBY 30",
        "250-RRVS",
        "250-AUTH LOGIN PLAIN",
      ]),
    );
    expect(ehlo.find((line) => line.startsWith("250-FUTURERELEASE"))).toMatch(
      /^250-FUTURERELEASE 86400 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
  });

  it("the default server advertises LIMITS RCPTMAX=1000 and none of the opt-in ones", async () => {
    const server = await served.start(recorder(), { host: "127.0.0.1" });
    const client = await served.open(server);
    await client.reply();
    const ehlo = await client.command("EHLO client.test");
    expect(ehlo).toContain("250-LIMITS RCPTMAX=1000");
    expect(ehlo).not.toMatch(/BINARYMIME|MT-PRIORITY|DELIVERBY|FUTURERELEASE|RRVS/);
    expect(await client.command("MAIL FROM:<a@example.com> MT-PRIORITY=1")).toBe(
      "555 5.5.4 MAIL FROM parameters not recognized or not implemented",
    );
  });

  it("handleMAIL, handleRCPT and handleDATA see the parameters; BINARYMIME comes by BDAT", async () => {
    const handler = recorder();
    const server = await startAll(handler);
    const client = await served.open(server);
    await client.reply();
    await client.command("EHLO client.test");
    expect(await client.command("AUTH PLAIN AHVzZXIAcGFzcw==")).toMatch(/^235 /);
    expect(
      await client.command(
        "MAIL FROM:<a@example.com> AUTH=boss+2Bmail@example.com BODY=BINARYMIME MT-PRIORITY=3 BY=120;R HOLDFOR=60",
      ),
    ).toBe("250 2.1.0 OK");
    expect(await client.command("RCPT TO:<b@example.com> RRVS=2014-04-03T23:01:00Z")).toBe(
      "250 2.1.5 OK",
    );
    expect(await client.command("RCPT TO:<refused@example.com> RRVS=2015-01-01T00:00:00Z;C")).toBe(
      "550 5.1.1 No such user",
    );
    expect(await client.command("DATA")).toBe(
      "503 5.5.1 Error: BODY=BINARYMIME needs BDAT, not DATA",
    );
    await client.write(Buffer.from("BDAT 6 LAST\r\n\x00\xff\r\n\n\r", "latin1"));
    expect(await client.reply()).toBe("250 2.0.0 Stored");

    const rrvs = { "b@example.com": { since: new Date("2014-04-03T23:01:00Z"), noSupport: null } };
    const mail = {
      auth: "boss+mail@example.com",
      bodyType: "BINARYMIME",
      mtPriority: 3,
      deliverBy: { seconds: 120, mode: "R", trace: false },
    };
    expect(handler.seen.map((s) => s.hook)).toEqual(["MAIL", "RCPT", "RCPT", "DATA"]);
    expect(handler.seen[0]).toMatchObject({ ...mail, rrvs: {} });
    expect(handler.seen[1]).toMatchObject({ ...mail, rrvs });
    // While handleRCPT runs, the RRVS of the recipient it decides on is there; refused, it goes.
    expect(handler.seen[2]?.rrvs).toEqual({
      ...rrvs,
      "refused@example.com": { since: new Date("2015-01-01T00:00:00Z"), noSupport: "C" },
    });
    expect(handler.seen[3]).toMatchObject({ ...mail, rrvs, content: "\x00\xff\r\n\n\r" });
    const release = handler.seen[3]?.futureRelease;
    expect(release?.holdFor).toBe(60);
    expect(release?.holdUntil).toBeNull();
    expect(Math.abs((release?.releaseAt.getTime() ?? 0) - (Date.now() + 60_000))).toBeLessThan(
      10_000,
    );
  });

  it("AUTH= from a client that has not authenticated is accepted and seen as <> (null)", async () => {
    const handler = recorder();
    const server = await startAll(handler);
    const client = await served.open(server);
    await client.reply();
    await client.command("EHLO client.test");
    expect(await client.command("MAIL FROM:<a@example.com> AUTH=boss@example.com")).toBe(
      "250 2.1.0 OK",
    );
    expect(await client.command("RSET")).toBe("250 2.0.0 OK");
    expect(await client.command("MAIL FROM:<a@example.com>")).toBe("250 2.1.0 OK");
    expect(handler.seen.map((s) => s.auth)).toEqual([null, undefined]);
  });

  it("refuses bad values with 501 / 554, and a refused MAIL leaves nothing on the envelope", async () => {
    const handler = recorder();
    const server = await startAll(handler);
    const client = await served.open(server);
    await client.reply();
    await client.command("EHLO client.test");
    const refusals: [string, string][] = [
      ["AUTH=nobody", "501 5.5.4 Error: AUTH must be a mailbox or <>, as xtext"],
      ["MT-PRIORITY=10", "501 5.5.4 Error: MT-PRIORITY must be a whole number from -9 to 9"],
      ["BY=10;R", "555 5.5.4 Error: BY time is below the advertised minimum"],
      [
        "BY=soon",
        "501 5.5.4 Error: BY must be <seconds>;N or <seconds>;R, optionally followed by T",
      ],
      ["HOLDFOR=86401", "554 5.5.4 Error: release time beyond the advertised maximum"],
      [
        "HOLDFOR=1 HOLDUNTIL=2030-01-01T00:00:00Z",
        "501 5.5.4 Error: HOLDFOR and HOLDUNTIL cannot be combined",
      ],
      ["BODY=BINARY", "501 5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME, BINARYMIME"],
    ];
    for (const [params, reply] of refusals) {
      expect(await client.command(`MAIL FROM:<a@example.com> ${params}`)).toBe(reply);
    }
    expect(handler.seen).toEqual([]);
    expect(
      await client.command("MAIL FROM:<refused@example.com> MT-PRIORITY=-2 BODY=BINARYMIME"),
    ).toBe("550 5.7.1 Not from you");
    expect(await client.command("MAIL FROM:<a@example.com>")).toBe("250 2.1.0 OK");
    expect(handler.seen[0]).toMatchObject({ mtPriority: -2, bodyType: "BINARYMIME" });
    expect(handler.seen[1]).toMatchObject({ mtPriority: null, bodyType: null, auth: undefined });
    expect(await client.command("RCPT TO:<b@example.com> RRVS=yesterday")).toBe(
      "501 5.5.4 Error: bad RRVS value",
    );
    expect(await client.command("RCPT TO:<b@example.com>")).toBe("250 2.1.5 OK");
    // Not BINARYMIME this time: DATA is fine.
    expect(await client.command("DATA")).toMatch(/^354 /);
  });
});

describe("extensions with Python's smtplib", () => {
  it.skipIf(pythonMissing && process.env.CI !== "true")(
    `mail_options and rcpt_options reach the hooks${pythonMissing ? " [skip: python3 not installed]" : ""}`,
    async () => {
      const handler = recorder();
      const server = await startAll(handler);
      const script = `
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.ehlo("client.test")
features = sorted(k for k in s.esmtp_features if k in ("binarymime", "limits", "mt-priority", "deliverby", "futurerelease", "rrvs"))
print(" ".join(features))
print(s.esmtp_features["limits"])
s.login("user", "pass")
s.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\\r\\n\\r\\nhello\\r\\n",
           mail_options=["AUTH=<>", "MT-PRIORITY=-5", "BY=600;NT", "HOLDUNTIL=2000-01-01T00:00:00Z"],
           rcpt_options=["RRVS=2020-02-29T12:00:00+02:00;R"])
try:
    s.sendmail("a@example.com", ["b@example.com"], b"x\\r\\n", mail_options=["MT-PRIORITY=high"])
except smtplib.SMTPSenderRefused as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
`;
      // Asynchronously: the server runs in this process.
      const run = await promisify(execFile)(PYTHON, ["-c", script, String(server.port)], {
        encoding: "utf8",
        timeout: 20_000,
      });
      expect(run.stderr).toBe("");
      expect(run.stdout.split("\n")).toEqual([
        "binarymime deliverby futurerelease limits mt-priority rrvs",
        "RCPTMAX=5",
        "501 5.5.4 Error: MT-PRIORITY must be a whole number from -9 to 9",
        "",
      ]);
      const data = handler.seen.find((s) => s.hook === "DATA");
      expect(data).toMatchObject({
        auth: null,
        bodyType: null,
        mtPriority: -5,
        deliverBy: { seconds: 600, mode: "N", trace: true },
        futureRelease: {
          holdFor: null,
          holdUntil: new Date("2000-01-01T00:00:00Z"),
          releaseAt: new Date("2000-01-01T00:00:00Z"),
        },
        rrvs: { "b@example.com": { since: new Date("2020-02-29T10:00:00Z"), noSupport: "R" } },
      });
    },
  );
});
