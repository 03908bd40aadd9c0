/**
 * Real SMTP clients against a running server (`serve()` from @smtpkit/node on 127.0.0.1, port 0).
 * Each client is skipped when its program is not installed; .ci/run installs them (Debian:
 * python3, swaks, libdigest-hmac-perl, libnet-ssleay-perl, msmtp, gsasl, curl, openssl).
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Authenticator, Handler } from "@smtpkit/core/server";
import { type SmtpServer, serve } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { authOptions, KNOWN_MECHANISMS } from "../src/auth-options.js";
import { OAuthCredentials } from "../src/mechanisms/oauth.js";
import { oauthBearer } from "../src/mechanisms/oauthbearer.js";
import { scramSha256 } from "../src/mechanisms/scram.js";
import { xoauth2 } from "../src/mechanisms/xoauth2.js";
import { AuthIdentity } from "../src/types.js";
import { parseUsersFile, usersFileLine } from "../src/users-file.js";
import { LineClient } from "./line-client.js";
import { makePki, type Pki } from "./pki.js";

const TOKEN = "ya29.good-token-123";

function has(program: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
// Outside CI a missing client skips its tests; in CI (.ci/run installs them all) it fails them,
// so a missing install step cannot hide behind a green run.
const required = (found: boolean): boolean => found || process.env.CI === "true";
/** The reason a skipped block gives in its name: " [skip: swaks not installed]". */
const unless = (found: boolean, tool: string): string =>
  found ? "" : ` [skip: ${tool} not installed]`;
const HAVE = {
  openssl: required(has("openssl")),
  python: required(has(PYTHON)),
  swaks: required(has("swaks")),
  msmtp: required(has("msmtp")),
  curl: required(has("curl")),
  gsasl: required(has("gsasl")),
};

interface Delivery {
  readonly server: string;
  readonly login: string | null;
  readonly mechanism: string | null;
}

const deliveries: Delivery[] = [];
function handler(name: string): Handler {
  return {
    handleDATA(_server, session) {
      const identity = session.authData instanceof AuthIdentity ? session.authData : null;
      deliveries.push({
        server: name,
        login: identity?.login ?? null,
        mechanism: identity?.mechanism ?? null,
      });
      return "250 2.0.0 OK: queued";
    },
  };
}
const lastDelivery = () => deliveries[deliveries.length - 1];

/** Runs a program; resolves with its exit code and output (never rejects). */
function run(
  file: string,
  args: string[],
  input = "",
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: 20000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(input);
  });
}

let pki: Pki;
let main: SmtpServer;
let smtps: SmtpServer;
let verifying: SmtpServer;
let limited: SmtpServer;
let excluded: SmtpServer;
const servers: SmtpServer[] = [];

describe.skipIf(!HAVE.openssl)(`real clients${unless(HAVE.openssl, "openssl")}`, () => {
  beforeAll(async () => {
    pki = makePki();
    const usersText = [
      "# test users",
      "alice:wonderland",
      await usersFileLine("bob", "builder"), // SCRAM-SHA-256 stored key only
      await usersFileLine("carol", "c4r0l-pw", { scheme: "bcrypt", iterations: 4 }),
      "frank:", // certificate only
    ].join("\n");
    const users = parseUsersFile(usersText);
    const byFile = users.createAuthenticator();
    const authenticator: Authenticator = (server, session, envelope, mechanism, credentials) => {
      if (credentials instanceof OAuthCredentials) {
        const ok = credentials.token === TOKEN && ["alice", ""].includes(credentials.login);
        return ok
          ? { success: true, authData: new AuthIdentity(mechanism, "alice", credentials.authzid) }
          : { success: false };
      }
      return byFile(server, session, envelope, mechanism, credentials);
    };
    const tls = {
      key: pki.serverKey,
      cert: pki.serverCert,
      ca: pki.ca,
      requestCert: true,
      rejectUnauthorized: false,
    };
    const all = authOptions({
      users,
      authenticator,
      mechanisms: [...KNOWN_MECHANISMS],
      failedAttempts: false,
    });
    const common = { host: "127.0.0.1", port: 0, hostname: "mx.test" };
    main = await serve(handler("main"), { ...common, ...all, tls });
    smtps = await serve(handler("smtps"), { ...common, ...all, smtps: tls });
    const verify = (c: OAuthCredentials) => c.token === TOKEN;
    verifying = await serve(handler("verifying"), {
      ...common,
      tls,
      mechanisms: [xoauth2({ verify }), oauthBearer({ verify })],
      authExcludeMechanism: ["PLAIN", "LOGIN"],
    });
    limited = await serve(handler("limited"), {
      ...common,
      ...authOptions({ users, requireTls: false, failedAttempts: { limit: 2, delayMs: 20 } }),
    });
    excluded = await serve(handler("excluded"), {
      ...common,
      ...authOptions({ users, mechanisms: ["PLAIN", "CRAM-MD5"], requireTls: false }),
    });
    servers.push(main, smtps, verifying, limited, excluded);
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close({ timeout: 1000 })));
    pki?.cleanup();
  });

  describe("Nodemailer", () => {
    const send = async (options: Record<string, unknown>) => {
      const transport = nodemailer.createTransport({
        host: "127.0.0.1",
        tls: { rejectUnauthorized: false },
        ...options,
      } as never);
      try {
        return await transport.sendMail({
          from: "sender@example.com",
          to: "rcpt@example.com",
          subject: "auth test",
          text: "hello",
        });
      } finally {
        transport.close();
      }
    };

    test("PLAIN over STARTTLS", async () => {
      await send({
        port: main.port,
        authMethod: "PLAIN",
        auth: { user: "alice", pass: "wonderland" },
      });
      expect(lastDelivery()).toEqual({ server: "main", login: "alice", mechanism: "PLAIN" });
    });

    test("LOGIN over STARTTLS (bcrypt user)", async () => {
      await send({
        port: main.port,
        authMethod: "LOGIN",
        auth: { user: "carol", pass: "c4r0l-pw" },
      });
      expect(lastDelivery()).toEqual({ server: "main", login: "carol", mechanism: "LOGIN" });
    });

    test("CRAM-MD5 in clear", async () => {
      await send({
        port: main.port,
        ignoreTLS: true,
        authMethod: "CRAM-MD5",
        auth: { user: "alice", pass: "wonderland" },
      });
      expect(lastDelivery()).toEqual({ server: "main", login: "alice", mechanism: "CRAM-MD5" });
    });

    test("XOAUTH2 over STARTTLS", async () => {
      await send({ port: main.port, auth: { type: "OAuth2", user: "alice", accessToken: TOKEN } });
      expect(lastDelivery()).toEqual({ server: "main", login: "alice", mechanism: "XOAUTH2" });
    });

    test("XOAUTH2 with a bad token fails (also through the JSON error challenge)", async () => {
      for (const server of [main, verifying]) {
        await expect(
          send({ port: server.port, auth: { type: "OAuth2", user: "alice", accessToken: "bad" } }),
        ).rejects.toMatchObject({ code: "EAUTH", responseCode: 535 });
      }
    });

    test("PLAIN over SMTPS (implicit TLS counts as TLS)", async () => {
      await send({ port: smtps.port, secure: true, auth: { user: "alice", pass: "wonderland" } });
      expect(lastDelivery()).toEqual({ server: "smtps", login: "alice", mechanism: "PLAIN" });
    });

    test("wrong password: EAUTH 535", async () => {
      await expect(
        send({ port: main.port, authMethod: "PLAIN", auth: { user: "alice", pass: "nope" } }),
      ).rejects.toMatchObject({ code: "EAUTH", responseCode: 535 });
    });
  });

  describe.skipIf(!HAVE.python)(`Python smtplib${unless(HAVE.python, "python3")}`, () => {
    const script = (
      port: number,
      mechanism: string,
      user: string,
      password: string,
      mode: string,
    ) => `
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL("127.0.0.1", ${port}, context=ctx) if "${mode}" == "smtps" else smtplib.SMTP("127.0.0.1", ${port})
s.ehlo()
if "${mode}" == "starttls":
    s.starttls(context=ctx); s.ehlo()
s.user, s.password = ${JSON.stringify(user)}, ${JSON.stringify(password)}
mech = "${mechanism}"
method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mech]
try:
    code, resp = s.auth(mech, method, initial_response_ok=(mech == "PLAIN"))
except smtplib.SMTPAuthenticationError as e:
    print("FAIL", e.smtp_code); sys.exit(0)
s.sendmail("sender@example.com", ["rcpt@example.com"], "Subject: py\\r\\n\\r\\nhi\\r\\n")
s.quit()
print("OK", code)
`;
    const python = async (
      port: number,
      mechanism: string,
      user: string,
      password: string,
      mode = "starttls",
    ) => {
      const result = await run(PYTHON, ["-c", script(port, mechanism, user, password, mode)]);
      return `${result.stdout}${result.stderr}`.trim();
    };

    test.each(["PLAIN", "LOGIN"])("%s over STARTTLS", async (mechanism) => {
      expect(await python(main.port, mechanism, "alice", "wonderland")).toBe("OK 235");
      expect(lastDelivery()).toEqual({ server: "main", login: "alice", mechanism });
    });

    test("CRAM-MD5 in clear", async () => {
      expect(await python(main.port, "CRAM-MD5", "alice", "wonderland", "clear")).toBe("OK 235");
      expect(lastDelivery()).toEqual({ server: "main", login: "alice", mechanism: "CRAM-MD5" });
    });

    test("PLAIN over SMTPS", async () => {
      expect(await python(smtps.port, "PLAIN", "bob", "builder", "smtps")).toBe("OK 235");
      expect(lastDelivery()).toEqual({ server: "smtps", login: "bob", mechanism: "PLAIN" });
    });

    test.each(["PLAIN", "LOGIN", "CRAM-MD5"])(
      "%s with a wrong password: 535",
      async (mechanism) => {
        const mode = mechanism === "CRAM-MD5" ? "clear" : "starttls";
        expect(await python(main.port, mechanism, "alice", "WONDERLAND", mode)).toBe("FAIL 535");
      },
    );

    test("CRAM-MD5 cannot work for a user stored as SCRAM keys", async () => {
      expect(await python(main.port, "CRAM-MD5", "bob", "builder", "clear")).toBe("FAIL 535");
    });
  });

  describe.skipIf(!HAVE.swaks)(`swaks${unless(HAVE.swaks, "swaks")}`, () => {
    const swaks = (port: number, mechanism: string, user: string, password: string, tls: boolean) =>
      run("swaks", [
        "--server",
        `127.0.0.1:${port}`,
        "--from",
        "sender@example.com",
        "--to",
        "rcpt@example.com",
        "--auth",
        mechanism,
        "--auth-user",
        user,
        "--auth-password",
        password,
        ...(tls ? ["--tls"] : []),
        "--silent",
        "2",
      ]);

    test.each([
      ["PLAIN", true],
      ["LOGIN", true],
      ["CRAM-MD5", false],
    ] as const)("%s (TLS: %s)", async (mechanism, tls) => {
      const result = await swaks(main.port, mechanism, "alice", "wonderland", tls);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(lastDelivery()).toEqual({ server: "main", login: "alice", mechanism });
    });

    test.each(["PLAIN", "LOGIN", "CRAM-MD5"])(
      "%s with a wrong password fails",
      async (mechanism) => {
        const result = await swaks(main.port, mechanism, "alice", "bad", mechanism !== "CRAM-MD5");
        expect(result.code).not.toBe(0);
        expect(result.stdout + result.stderr).toContain("535");
      },
    );
  });

  describe.skipIf(!HAVE.msmtp)(`msmtp (GNU SASL)${unless(HAVE.msmtp, "msmtp")}`, () => {
    const msmtp = (mechanism: string, user: string, password: string, tls: boolean) => {
      const passwordFile = join(pki.dir, `pw-${user}`);
      writeFileSync(passwordFile, password);
      return run(
        "msmtp",
        [
          "--host=127.0.0.1",
          `--port=${main.port}`,
          `--auth=${mechanism}`,
          `--user=${user}`,
          `--passwordeval=cat ${passwordFile}`,
          `--tls=${tls ? "on" : "off"}`,
          "--tls-starttls=on",
          "--tls-certcheck=off",
          "--from=sender@example.com",
          "rcpt@example.com",
        ],
        "Subject: msmtp\r\n\r\nhello\r\n",
      );
    };

    test.each([
      ["scram-sha-256", false],
      ["scram-sha-256", true],
      ["scram-sha-1", false],
      ["scram-sha-1", true],
    ] as const)("%s (TLS: %s), keys derived from a plain-text entry", async (mechanism, tls) => {
      const result = await msmtp(mechanism, "alice", "wonderland", tls);
      expect(result.code, result.stderr).toBe(0);
      expect(lastDelivery()).toEqual({
        server: "main",
        login: "alice",
        mechanism: mechanism.toUpperCase(),
      });
    });

    test("scram-sha-256 against stored keys (no plain text on the server)", async () => {
      const result = await msmtp("scram-sha-256", "bob", "builder", false);
      expect(result.code, result.stderr).toBe(0);
      expect(lastDelivery()).toEqual({ server: "main", login: "bob", mechanism: "SCRAM-SHA-256" });
    });

    test("with sendServerError: false msmtp shows the server's 535", async () => {
      const users = parseUsersFile("alice:wonderland\n");
      const quiet = await serve(handler("quiet"), {
        host: "127.0.0.1",
        port: 0,
        mechanisms: [scramSha256({ lookup: users.scramLookup, sendServerError: false })],
      });
      try {
        const passwordFile = join(pki.dir, "pw-quiet");
        writeFileSync(passwordFile, "bad");
        const result = await run(
          "msmtp",
          [
            "--host=127.0.0.1",
            `--port=${quiet.port}`,
            "--auth=scram-sha-256",
            "--user=alice",
            `--passwordeval=cat ${passwordFile}`,
            "--tls=off",
            "--from=sender@example.com",
            "rcpt@example.com",
          ],
          "Subject: x\r\n\r\nx\r\n",
        );
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain("535 5.7.8 Authentication failed (invalid-proof)");
      } finally {
        await quiet.close({ timeout: 1000 });
      }
    });

    test.each(["scram-sha-256", "scram-sha-1"])(
      "%s with a wrong password fails",
      async (mechanism) => {
        const before = deliveries.length;
        const result = await msmtp(mechanism, "alice", "bad", false);
        expect(result.code).not.toBe(0);
        expect(deliveries.length).toBe(before);
      },
    );
  });

  describe.skipIf(!HAVE.curl)(`curl${unless(HAVE.curl, "curl")}`, () => {
    const curl = (port: number, mechanism: string, token: string) =>
      run(
        "curl",
        [
          "-sS",
          `smtp://127.0.0.1:${port}`,
          "--mail-from",
          "sender@example.com",
          "--mail-rcpt",
          "rcpt@example.com",
          "--upload-file",
          "-",
          "--user",
          "alice:",
          "--oauth2-bearer",
          token,
          "--login-options",
          `AUTH=${mechanism}`,
          "--ssl-reqd",
          "--insecure",
        ],
        "Subject: curl\r\n\r\nhello\r\n",
      );

    test("OAUTHBEARER with the authenticator", async () => {
      const result = await curl(main.port, "OAUTHBEARER", TOKEN);
      expect(result.code, result.stderr).toBe(0);
      expect(lastDelivery()).toEqual({ server: "main", login: "alice", mechanism: "OAUTHBEARER" });
      expect((await curl(main.port, "OAUTHBEARER", "bad")).code).toBe(67); // login denied
    });

    test.each(["OAUTHBEARER", "XOAUTH2"])(
      "%s with verify(): success, and the JSON error flow",
      async (mechanism) => {
        // curl prefers OAUTHBEARER when both are offered, so each gets a server of its own.
        const alone = await serve(handler("alone"), {
          host: "127.0.0.1",
          port: 0,
          hostname: "mx.test",
          tls: { key: pki.serverKey, cert: pki.serverCert },
          mechanisms: [
            mechanism === "XOAUTH2"
              ? xoauth2({ verify: (c) => c.token === TOKEN })
              : oauthBearer({ verify: (c) => c.token === TOKEN }),
          ],
          authExcludeMechanism: ["PLAIN", "LOGIN"],
        });
        try {
          const ok = await curl(alone.port, mechanism, TOKEN);
          expect(ok.code, ok.stderr).toBe(0);
          expect(lastDelivery()).toEqual({ server: "alone", login: "alice", mechanism });
          const bad = await curl(alone.port, mechanism, "bad");
          expect(bad.code).toBe(67);
        } finally {
          await alone.close({ timeout: 1000 });
        }
      },
    );
  });

  describe.skipIf(!HAVE.gsasl)(
    `GNU SASL's gsasl client: -PLUS and EXTERNAL${unless(HAVE.gsasl, "gsasl")}`,
    () => {
      const gsasl = (mechanism: string, extra: string[]) =>
        run("gsasl", [
          "--smtp",
          "--mechanism",
          mechanism,
          "--x509-ca-file",
          pki.caPath,
          "--hostname",
          "localhost",
          ...extra,
          "127.0.0.1",
          String(main.port),
        ]);

      test.each(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"])(
        "%s binds to the TLS channel",
        async (mechanism) => {
          const result = await gsasl(mechanism, ["-a", "alice", "-p", "wonderland"]);
          expect(result.stdout + result.stderr).toContain("235 2.7.0");
        },
      );

      test("SCRAM-SHA-256-PLUS with a wrong password fails", async () => {
        const result = await gsasl("SCRAM-SHA-256-PLUS", ["-a", "alice", "-p", "bad"]);
        expect(result.stdout + result.stderr).not.toContain("235 ");
      });

      test("EXTERNAL with a client certificate", async () => {
        const result = await gsasl("EXTERNAL", [
          "--x509-cert-file",
          pki.clientCertPath,
          "--x509-key-file",
          pki.clientKeyPath,
        ]);
        expect(result.stdout + result.stderr).toContain("235 2.7.0");
      });
    },
  );

  describe("EXTERNAL with a node:tls client", () => {
    const tryExternal = async (options: {
      cert?: string;
      key?: string;
      implicit?: boolean;
      offered?: boolean;
    }) => {
      const { readFileSync } = await import("node:fs");
      const tlsOptions = options.cert
        ? { cert: readFileSync(options.cert), key: readFileSync(options.key as string) }
        : {};
      const client = await LineClient.connect(options.implicit ? smtps.port : main.port, {
        implicitTls: options.implicit ?? false,
        tls: tlsOptions,
      });
      try {
        await client.reply();
        await client.command("EHLO client");
        if (!options.implicit) {
          await client.startTls(tlsOptions);
          const ehlo = await client.command("EHLO client");
          // EXTERNAL is offered only to a client whose certificate verified (available()).
          if (options.offered === false) expect(ehlo).not.toContain("EXTERNAL");
          else expect(ehlo).toContain("EXTERNAL");
        }
        return await client.command("AUTH EXTERNAL =");
      } finally {
        client.close();
      }
    };

    test("a certificate from the trusted CA for a listed user: 235", async () => {
      expect(await tryExternal({ cert: pki.clientCertPath, key: pki.clientKeyPath })).toMatch(
        /^235 /,
      );
    });
    test("the same over SMTPS", async () => {
      expect(
        await tryExternal({ cert: pki.clientCertPath, key: pki.clientKeyPath, implicit: true }),
      ).toMatch(/^235 /);
    });
    test("a certificate from another CA: EXTERNAL not offered, 504", async () => {
      expect(
        await tryExternal({ cert: pki.rogueCertPath, key: pki.rogueKeyPath, offered: false }),
      ).toMatch(/^504 5\.5\.4/);
    });
    test("no certificate: EXTERNAL not offered, 504", async () => {
      expect(await tryExternal({ offered: false })).toMatch(/^504 5\.5\.4/);
    });
  });

  describe("protocol edge cases (raw client)", () => {
    const open = async (port: number, implicitTls = false) => {
      const client = await LineClient.connect(port, { implicitTls });
      expect(await client.reply()).toMatch(/^220 /);
      return client;
    };

    test("in clear only the mechanisms safe without TLS are offered; PLAIN gets 538", async () => {
      const client = await open(main.port);
      const ehlo = await client.command("EHLO client");
      expect(ehlo).toContain("250-AUTH CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256\n");
      expect(await client.command("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")).toMatch(/^538 5\.7\.11/);
      expect(await client.command("AUTH XOAUTH2")).toMatch(/^538 /);
      await client.startTls();
      const secure = await client.command("EHLO client");
      expect(secure).toContain(
        "250-AUTH CRAM-MD5 LOGIN OAUTHBEARER PLAIN SCRAM-SHA-1 SCRAM-SHA-1-PLUS SCRAM-SHA-256 SCRAM-SHA-256-PLUS XOAUTH2\n",
      );
      expect(await client.command("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")).toMatch(/^235 /);
      client.close();
    });

    test("AUTH over SMTPS works at once", async () => {
      const client = await open(smtps.port, true);
      expect(await client.command("EHLO client")).toContain("PLAIN");
      expect(await client.command("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")).toMatch(/^235 /);
      client.close();
    });

    test("AUTH before EHLO (503), after HELO (500), twice (503); unknown mechanism (504)", async () => {
      const client = await open(smtps.port, true);
      expect(await client.command("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")).toMatch(/^503 /);
      expect(await client.command("HELO client")).toMatch(/^250 /);
      // aiosmtpd: after HELO, AUTH is an unknown command.
      expect(await client.command("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")).toMatch(/^500 /);
      await client.command("EHLO client");
      expect(await client.command("AUTH DIGEST-MD5")).toMatch(/^504 /);
      expect(await client.command("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")).toMatch(/^235 /);
      expect(await client.command("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")).toMatch(/^503 /);
      client.close();
    });

    test("excluded mechanisms are neither offered nor accepted", async () => {
      const client = await open(excluded.port);
      const ehlo = await client.command("EHLO client");
      expect(ehlo).toContain("250-AUTH CRAM-MD5 PLAIN\n");
      expect(await client.command("AUTH LOGIN")).toMatch(/^504 /);
      expect(await client.command("AUTH SCRAM-SHA-256")).toMatch(/^504 /);
      client.close();
    });

    test("* cancels, bad base64 is refused, in the middle of an exchange", async () => {
      const client = await open(main.port);
      await client.command("EHLO client");
      expect(await client.command("AUTH SCRAM-SHA-256")).toBe("334");
      expect(await client.command("*")).toMatch(/^501 /);
      expect(await client.command("AUTH CRAM-MD5")).toMatch(/^334 /);
      expect(await client.command("not base64!")).toMatch(/^501 /);
      expect(await client.command("AUTH CRAM-MD5 =")).toMatch(/^334 |^501 /);
      client.close();
    });

    test("failed attempts: 535 with a delay, then 421 4.7.0 and close", async () => {
      const client = await open(limited.port);
      await client.command("EHLO client");
      const started = Date.now();
      expect(await client.command("AUTH PLAIN AGFsaWNlAG5vcGU=")).toMatch(/^535 /);
      expect(Date.now() - started).toBeGreaterThanOrEqual(15);
      expect(await client.command("AUTH PLAIN AGFsaWNlAG5vcGU=")).toBe(
        "421 4.7.0 Too many failed authentication attempts",
      );
      await client.closedByServer();
    });
  });
});
