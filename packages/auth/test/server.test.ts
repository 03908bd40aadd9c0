import type { SaslMechanism } from "@smtpkit/core";
import { type Authenticator, SMTP, type SmtpOptions, type TlsInfo } from "@smtpkit/core/server";
import { describe, expect, test } from "vitest";
import { authOptions } from "../src/auth-options.js";
import { failedAttempts } from "../src/failed-attempts.js";
import { cramMd5 } from "../src/mechanisms/cram-md5.js";
import { scramSha256 } from "../src/mechanisms/scram.js";
import { xoauth2 } from "../src/mechanisms/xoauth2.js";
import { simulateSasl } from "../src/simulate.js";
import { parseUsersFile } from "../src/users-file.js";
import { b64, dec, ScramClient, unb64 } from "./helpers.js";
import { fakeTls, MemoryTransport } from "./memory-transport.js";

function start(options: SmtpOptions, tls: TlsInfo | null = fakeTls()) {
  const transport = new MemoryTransport(tls);
  const smtp = new SMTP({}, { hostname: "mx.test", ...options });
  const done = smtp.run(transport);
  return { transport, smtp, done };
}

const users = parseUsersFile("alice:wonderland\n");

describe("failedAttempts over the real SMTP class", () => {
  test("delays failures; the limit-th failure gets 421 4.7.0 and the connection closes", async () => {
    const { transport, done } = start({
      authenticator: failedAttempts({ limit: 3, delayMs: 60 })(users.authenticator),
    });
    await transport.reply();
    await transport.command("EHLO client");
    const bad = `AUTH PLAIN ${b64("\0alice\0nope")}`;
    for (let i = 0; i < 2; i++) {
      const begun = Date.now();
      expect(await transport.command(bad)).toMatch(/^535 5\.7\.8/);
      expect(Date.now() - begun).toBeGreaterThanOrEqual(50);
    }
    expect(await transport.command(bad)).toBe("421 4.7.0 Too many failed authentication attempts");
    await done;
    expect(transport.closed).toBe(true);
  });

  test("a success before the limit works; counters are per connection", async () => {
    const wrapped = failedAttempts({ limit: 2, delayMs: 0 })(users.authenticator);
    for (let round = 0; round < 2; round++) {
      const { transport, smtp } = start({ authenticator: wrapped });
      await transport.reply();
      await transport.command("EHLO client");
      expect(await transport.command(`AUTH PLAIN ${b64("\0alice\0nope")}`)).toMatch(/^535/);
      expect(await transport.command(`AUTH PLAIN ${b64("\0alice\0wonderland")}`)).toMatch(/^235/);
      smtp.abort();
    }
  });

  test("limit must be a positive integer", () => {
    expect(() => failedAttempts({ limit: 0 })).toThrow(RangeError);
  });
});

describe("mechanisms over the real SMTP class", () => {
  test("CRAM-MD5 in clear with a users file", async () => {
    const { transport, smtp } = start(
      { mechanisms: [cramMd5()], authenticator: users.authenticator },
      null,
    );
    await transport.reply();
    const ehlo = await transport.command("EHLO client");
    expect(ehlo).toContain("AUTH CRAM-MD5");
    expect(ehlo).not.toContain("PLAIN");
    const challenge = await transport.command("AUTH CRAM-MD5");
    const text = dec(unb64((challenge as string).slice(4)));
    const { createHmac } = await import("node:crypto");
    const digest = createHmac("md5", "wonderland").update(text).digest("hex");
    expect(await transport.command(b64(`alice ${digest}`))).toMatch(/^235/);
    smtp.abort();
  });

  test("SCRAM-SHA-256 in clear: server-final as 334, empty answer, 235", async () => {
    const { transport, smtp } = start(
      { mechanisms: [scramSha256({ lookup: users.scramLookup })] },
      null,
    );
    await transport.reply();
    expect(await transport.command("EHLO client")).toContain("AUTH SCRAM-SHA-256");
    const client = new ScramClient("SHA-256", "alice", "wonderland");
    const first = await transport.command(
      `AUTH SCRAM-SHA-256 ${Buffer.from(client.first()).toString("base64")}`,
    );
    expect(first).toMatch(/^334 /);
    const final = await transport.command(
      Buffer.from(client.final(unb64((first as string).slice(4)))).toString("base64"),
    );
    expect(client.verifyServer(unb64((final as string).slice(4)))).toBe(true);
    expect(await transport.command("")).toMatch(/^235/);
    smtp.abort();
  });

  test("SCRAM wrong password: e=invalid-proof as 334, then 535", async () => {
    const { transport, smtp } = start(
      { mechanisms: [scramSha256({ lookup: users.scramLookup })] },
      null,
    );
    await transport.reply();
    await transport.command("EHLO client");
    const client = new ScramClient("SHA-256", "alice", "bad");
    const first = await transport.command(
      `AUTH SCRAM-SHA-256 ${Buffer.from(client.first()).toString("base64")}`,
    );
    const final = await transport.command(
      Buffer.from(client.final(unb64((first as string).slice(4)))).toString("base64"),
    );
    expect(dec(unb64((final as string).slice(4)))).toBe("e=invalid-proof");
    expect(await transport.command("")).toMatch(/^535 5\.7\.8/);
    smtp.abort();
  });

  test("XOAUTH2 failure: 535 (with the JSON 334 first when the core supports verdict())", async () => {
    const authenticator: Authenticator = () => ({ success: false });
    const { transport, smtp } = start({ mechanisms: [xoauth2()], authenticator });
    await transport.reply();
    await transport.command("EHLO client");
    let reply = await transport.command(`AUTH XOAUTH2 ${b64("user=a\x01auth=Bearer t\x01\x01")}`);
    if (reply?.startsWith("334 ")) {
      expect(JSON.parse(dec(unb64(reply.slice(4))))).toMatchObject({ status: "401" });
      reply = await transport.command("");
    }
    expect(reply).toMatch(/^535/);
    smtp.abort();
  });

  test("XOAUTH2 with verify: the JSON challenge, the empty answer, then 535", async () => {
    const { transport, smtp } = start({
      mechanisms: [xoauth2({ verify: (c) => c.token === "good" })],
    });
    await transport.reply();
    await transport.command("EHLO client");
    const reply = await transport.command(
      `AUTH XOAUTH2 ${b64("user=a\x01auth=Bearer bad\x01\x01")}`,
    );
    expect(reply).toMatch(/^334 /);
    expect(JSON.parse(dec(unb64((reply as string).slice(4))))).toEqual({
      status: "401",
      schemes: "bearer",
    });
    expect(await transport.command("")).toMatch(/^535/);
    expect(
      await transport.command(`AUTH XOAUTH2 ${b64("user=a\x01auth=Bearer good\x01\x01")}`),
    ).toMatch(/^235/);
    smtp.abort();
  });
});

describe("authOptions()", () => {
  test("defaults: PLAIN LOGIN CRAM-MD5 SCRAM-*; failure limit on", async () => {
    const options = authOptions({ users });
    expect(options.mechanisms?.map((m) => m.name)).toEqual([
      "CRAM-MD5",
      "SCRAM-SHA-256",
      "SCRAM-SHA-256-PLUS",
      "SCRAM-SHA-1",
      "SCRAM-SHA-1-PLUS",
    ]);
    expect(options.authExcludeMechanism).toEqual([]);
    expect(options.authRequireTls).toBe(true);
    expect(options.authRequired).toBe(false);
    const { transport, smtp } = start(options, null);
    await transport.reply();
    const ehlo = await transport.command("EHLO client");
    // In clear with authRequireTls: only what never reveals the password.
    expect(ehlo).toContain("250-AUTH CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256");
    expect(await transport.command(`AUTH PLAIN ${b64("\0alice\0wonderland")}`)).toMatch(/^538/);
    smtp.abort();
  });

  test("a mechanism list excludes the built-ins not in it; unknown names throw", async () => {
    const options = authOptions({
      users,
      mechanisms: ["scram-sha-256", "login"],
      requireTls: false,
      required: true,
    });
    expect(options.authExcludeMechanism).toEqual(["PLAIN"]);
    expect(options.mechanisms?.map((m) => m.name)).toEqual(["SCRAM-SHA-256"]);
    const { transport, smtp } = start(options, null);
    await transport.reply();
    expect(await transport.command("EHLO client")).toContain("AUTH LOGIN SCRAM-SHA-256");
    expect(await transport.command("MAIL FROM:<a@b>")).toMatch(/^530/);
    expect(await transport.command("AUTH PLAIN")).toMatch(/^504/);
    smtp.abort();
    expect(() => authOptions({ users, mechanisms: ["DIGEST-MD5"] })).toThrow(
      /Unknown AUTH mechanism: DIGEST-MD5/,
    );
  });
});

describe("the README's custom mechanism", () => {
  const anonymous: SaslMechanism = {
    name: "ANONYMOUS",
    safeWithoutTls: true,
    start: () => ({
      step(response) {
        if (response === null) return { type: "challenge", challenge: new Uint8Array(0) };
        const trace = new TextDecoder().decode(response);
        if (trace.length > 255) return { type: "failure", reply: "501 5.5.2 Trace too long" };
        return { type: "success", authData: { anonymous: true, trace } };
      },
    }),
  };

  test("works with simulateSasl()", async () => {
    const { result } = await simulateSasl(anonymous, {
      client: () => new TextEncoder().encode("me"),
    });
    expect(result).toEqual({ success: true, authData: { anonymous: true, trace: "me" } });
  });

  test("works in the server, in clear", async () => {
    const { transport, smtp } = start({ mechanisms: [anonymous], authRequireTls: false }, null);
    await transport.reply();
    expect(await transport.command("EHLO client")).toContain("AUTH ANONYMOUS LOGIN PLAIN");
    expect(await transport.command("AUTH ANONYMOUS")).toBe("334");
    expect(await transport.command(b64("trace"))).toMatch(/^235 /);
    smtp.abort();
  });
});
