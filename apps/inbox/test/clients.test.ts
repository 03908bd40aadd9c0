import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { api, inboxForEachTest, transport } from "./served.js";

const run = promisify(execFile);
function has(program: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
// Outside CI a missing tool skips its tests; in CI (.ci/run installs them) it fails them.
const required = (found: boolean) => found || process.env.CI === "true";
const unless = (found: boolean, tool: string) => (found ? "" : ` [skip: ${tool} not installed]`);
const python = has(PYTHON);
const openssl = has("openssl");

const pki = mkdtempSync(join(tmpdir(), "smtpkit-inbox-tls-"));
afterAll(() => rmSync(pki, { recursive: true, force: true }));
function certificate(): { cert: Buffer; key: Buffer } {
  const key = join(pki, "key.pem");
  const cert = join(pki, "cert.pem");
  if (!existsSync(cert))
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

/** Runs a Python smtplib script; `PORT` in it is the inbox's SMTP port. */
async function smtplib(port: number, script: string): Promise<string> {
  const { stdout } = await run(PYTHON, ["-c", script.replaceAll("PORT", String(port))], {
    timeout: 20_000,
  });
  return stdout.trim();
}

interface Listing {
  total: number;
  messages: { ID: string; Subject: string; RcptTo: string[]; Size: number }[];
}

describe.runIf(required(python))(`Python smtplib${unless(python, "python3")}`, () => {
  const served = inboxForEachTest();

  it("sends a message that the API lists with its envelope", async () => {
    const out = await smtplib(
      served.inbox.smtpPort,
      `import smtplib
s = smtplib.SMTP("127.0.0.1", PORT)
print(s.sendmail("a@example.com", ["b@example.com", "c+py@example.com"], "Subject: from python\\r\\nX-Tags: smtplib\\r\\n\\r\\nhello from smtplib\\r\\n"))
s.quit()`,
    );
    expect(out).toBe("{}");
    const listing = await api<Listing>(served.inbox, "/api/v1/messages");
    expect(listing.body.messages[0]).toMatchObject({
      Subject: "from python",
      RcptTo: ["b@example.com", "c+py@example.com"],
      Tags: ["py", "smtplib"],
    });
  });

  it("a message over the size limit gets 552 and is not kept", async () => {
    const out = await smtplib(
      served.inbox.smtpPort,
      `import smtplib
s = smtplib.SMTP("127.0.0.1", PORT)
try:
    s.sendmail("a@example.com", ["b@example.com"], "Subject: big\\r\\n\\r\\n" + ("x" * 998 + "\\r\\n") * 40000)
except smtplib.SMTPException as e:
    print(type(e).__name__, getattr(e, "smtp_code", ""))`,
    );
    expect(out).toMatch(/552/);
    expect((await api<Listing>(served.inbox, "/api/v1/messages")).body.total).toBe(0);
    const rows = served.inbox.store.db.prepare("SELECT count(*) AS n FROM messages").get() as {
      n: number;
    };
    expect(rows.n).toBe(0);
  });
});

describe.runIf(required(python))(`LMTP with smtplib.LMTP${unless(python, "python3")}`, () => {
  const served = inboxForEachTest({ lmtp: true });
  it("one reply per recipient, the message stored once", async () => {
    const out = await smtplib(
      served.inbox.smtpPort,
      `import smtplib
s = smtplib.LMTP("127.0.0.1", PORT)
print(s.sendmail("a@example.com", ["b@example.com", "c@example.com"], "Subject: over lmtp\\r\\n\\r\\nhi\\r\\n"))
s.quit()`,
    );
    expect(out).toBe("{}");
    const listing = await api<Listing>(served.inbox, "/api/v1/messages");
    expect(listing.body.messages.map((m) => [m.Subject, m.RcptTo])).toEqual([
      ["over lmtp", ["b@example.com", "c@example.com"]],
    ]);
  });
});

describe.runIf(required(openssl))(
  `STARTTLS and AUTH from a users file${unless(openssl, "openssl")}`,
  () => {
    const tls = openssl ? certificate() : { cert: Buffer.alloc(0), key: Buffer.alloc(0) };
    const served = inboxForEachTest({ tls, auth: { usersFile: "alice:wonderland\n" } });

    it("Nodemailer upgrades with STARTTLS and logs in", async () => {
      const info = await transport(served.inbox, {
        ignoreTLS: false,
        requireTLS: true,
        tls: { ca: tls.cert, servername: "localhost" },
        auth: { user: "alice", pass: "wonderland" },
      }).sendMail({
        from: "alice@example.com",
        to: "bob@example.com",
        subject: "secure",
        text: "over TLS",
      });
      expect(info.response).toMatch(/^250/);
      expect((await api<Listing>(served.inbox, "/api/v1/messages")).body.messages[0]?.Subject).toBe(
        "secure",
      );
    });

    it("a wrong password is refused", async () => {
      const error = await transport(served.inbox, {
        ignoreTLS: false,
        requireTLS: true,
        tls: { ca: tls.cert, servername: "localhost" },
        auth: { user: "alice", pass: "wrong" },
      })
        .sendMail({ from: "alice@example.com", to: "bob@example.com", subject: "x", text: "x" })
        .catch((e: { responseCode?: number }) => e);
      expect((error as { responseCode?: number }).responseCode).toBe(535);
    });

    it.runIf(required(python))(
      `smtplib: starttls(), login(), sendmail()${unless(python, "python3")}`,
      async () => {
        const out = await smtplib(
          served.inbox.smtpPort,
          `import smtplib, ssl
ctx = ssl.create_default_context(cafile=${JSON.stringify(join(pki, "cert.pem"))})
s = smtplib.SMTP("localhost", PORT)
s.starttls(context=ctx)
s.login("alice", "wonderland")
print(s.sendmail("a@example.com", ["b@example.com"], "Subject: py tls\\r\\n\\r\\nhi\\r\\n"))
s.quit()`,
        );
        expect(out).toBe("{}");
        expect(
          (await api<Listing>(served.inbox, "/api/v1/messages")).body.messages[0]?.Subject,
        ).toBe("py tls");
      },
    );
  },
);

describe("AUTH accept-any", () => {
  const served = inboxForEachTest({ auth: { any: true } });
  it("any login works, without TLS", async () => {
    const info = await transport(served.inbox, {
      auth: { user: "whoever", pass: "whatever" },
    }).sendMail({
      from: "a@example.com",
      to: "b@example.com",
      subject: "any",
      text: "x",
    });
    expect(info.response).toMatch(/^250/);
  });
});
