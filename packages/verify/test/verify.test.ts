// Sender verification over real sockets: Nodemailer (and swaks for a spoofed sender) against
// smtpkit with the verifier, every DNS answer from a real dnsmasq on 127.0.0.1.
import { spawn, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { verifier } from "../src/index.js";
import { Dnsmasq, dnsmasqMissing, silentDnsServer, withDnsmasq } from "./dnsmasq.js";
import {
  authResults,
  message,
  recorder,
  type Stored,
  send,
  serversForEachTest,
  ZONE,
} from "./fixtures.js";

const swaksMissing = spawnSync("swaks", ["--version"]).status === 0 ? false : "swaks not installed";
if (swaksMissing && process.env.CI) throw new Error("swaks is required in CI");

/** A command's standard output (run asynchronously: the server under test is in this process). */
function output(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (data) => {
      out += data;
    });
    child.once("error", reject);
    child.once("close", () => resolve(out));
  });
}

describe.skipIf(dnsmasqMissing)(withDnsmasq("verifier against dnsmasq"), () => {
  const dns = new Dnsmasq();
  const start = serversForEachTest();
  beforeAll(() => dns.start(ZONE));
  afterAll(() => dns.stop());

  const verify = (options: Parameters<typeof verifier>[0] = {}) =>
    verifier({ dnsServer: dns.server, dnsTimeout: 1500, ...options });

  test("SPF, DKIM and DMARC pass: Authentication-Results first, verdicts on the envelope", async () => {
    const stored: Stored[] = [];
    const server = await start(verify(), recorder(stored));
    const raw = await message({ from: "alice@example.com", signingDomain: "example.com" });
    const info = await send(server.port, { from: "alice@example.com" }, raw);
    expect(info.response).toBe("250 2.0.0 Stored");
    const [mail] = stored;
    expect(mail?.text.startsWith("Authentication-Results: mx.test;\r\n\t")).toBe(true);
    const results = authResults(mail?.text ?? "");
    expect(results).toMatch(/dkim=pass .*header\.d=example\.com/);
    expect(results).toMatch(/spf=pass .*smtp\.mailfrom=alice@example\.com/);
    expect(results).toMatch(/dmarc=pass .*header\.from=example\.com/);
    expect(results).toMatch(/arc=none/);
    // The message itself follows unchanged.
    expect(mail?.text.endsWith(raw)).toBe(true);
    expect(mail?.authentication?.spf?.status.result).toBe("pass");
    expect(mail?.authentication?.dkim?.[0]?.status.result).toBe("pass");
    expect(mail?.authentication?.dmarc?.status.result).toBe("pass");
    expect(mail?.authentication?.action).toBe("accept");
    expect(mail?.quarantine).toBe(false);
  });

  test("SPF fail (a client the domain does not list) while DKIM keeps DMARC passing", async () => {
    const stored: Stored[] = [];
    const server = await start(verify(), recorder(stored));
    const raw = await message({ from: "alice@example.com", signingDomain: "example.com" });
    await send(server.port, { from: "alice@example.com" }, raw, "127.0.0.2");
    const results = authResults(stored[0]?.text ?? "");
    expect(results).toMatch(/spf=fail .*does not designate 127\.0\.0\.2/);
    expect(results).toMatch(/dkim=pass/);
    expect(results).toMatch(/dmarc=pass/);
  });

  test("SPF softfail (~all)", async () => {
    const stored: Stored[] = [];
    const server = await start(verify(), recorder(stored));
    const raw = await message({ from: "carol@example.org" });
    await send(server.port, { from: "carol@example.org" }, raw);
    expect(authResults(stored[0]?.text ?? "")).toMatch(
      /spf=softfail .*smtp\.mailfrom=carol@example\.org/,
    );
    expect(stored[0]?.authentication?.spf?.status.result).toBe("softfail");
  });

  test("DKIM fails when the body was altered after signing", async () => {
    const stored: Stored[] = [];
    const server = await start(verify(), recorder(stored));
    const raw = await message({ from: "alice@example.com", signingDomain: "example.com" });
    await send(
      server.port,
      { from: "alice@example.com" },
      raw.replace("Hello Bob.", "Pay Mallory."),
    );
    expect(authResults(stored[0]?.text ?? "")).toMatch(/dkim=neutral \(body hash did not verify\)/);
    // mailauth's verdict for a body hash mismatch; DMARC then rests on SPF alone.
    expect(stored[0]?.authentication?.dkim?.[0]?.status.result).toBe("neutral");
  });

  test("DKIM fails when a signed header was altered", async () => {
    const stored: Stored[] = [];
    const server = await start(verify(), recorder(stored));
    const raw = await message({ from: "alice@example.com", signingDomain: "example.com" });
    await send(
      server.port,
      { from: "alice@example.com" },
      raw.replace("Subject: Hello", "Subject: Urgent"),
    );
    expect(authResults(stored[0]?.text ?? "")).toMatch(/dkim=fail \(bad signature\)/);
  });

  test("an unsigned message: dkim=none", async () => {
    const stored: Stored[] = [];
    const server = await start(verify(), recorder(stored));
    await send(
      server.port,
      { from: "alice@example.com" },
      await message({ from: "alice@example.com" }),
    );
    const results = authResults(stored[0]?.text ?? "");
    expect(results).toMatch(/dkim=none/);
    // SPF alone aligns with the From domain.
    expect(results).toMatch(/dmarc=pass/);
  });

  test("DMARC fail with p=reject: tagged by default", async () => {
    const stored: Stored[] = [];
    const server = await start(verify(), recorder(stored));
    await send(
      server.port,
      { from: "alice@example.com" },
      await message({ from: "alice@example.com" }),
      "127.0.0.2",
    );
    expect(authResults(stored[0]?.text ?? "")).toMatch(/dmarc=fail .*p=REJECT/);
    expect(stored[0]?.authentication?.action).toBe("accept");
  });

  test("DMARC fail with p=reject under the reject policy: 550 5.7.1, nothing delivered", async () => {
    const stored: Stored[] = [];
    const server = await start(verify({ policy: "reject" }), recorder(stored));
    const raw = await message({ from: "alice@example.com" });
    await expect(
      send(server.port, { from: "alice@example.com" }, raw, "127.0.0.2"),
    ).rejects.toMatchObject({
      responseCode: 550,
      response: expect.stringMatching(/^550 5\.7\.1 .*example\.com.*DMARC/),
    });
    expect(stored).toEqual([]);
  });

  test("DMARC fail with p=none under the reject policy: accepted and tagged", async () => {
    const stored: Stored[] = [];
    const server = await start(verify({ policy: "reject" }), recorder(stored));
    await send(
      server.port,
      { from: "carol@example.org" },
      await message({ from: "carol@example.org" }),
    );
    expect(authResults(stored[0]?.text ?? "")).toMatch(/dmarc=fail .*p=NONE/);
    expect(stored[0]?.authentication?.action).toBe("accept");
  });

  test("the quarantine policy marks a p=reject failure instead of refusing it", async () => {
    const stored: Stored[] = [];
    const server = await start(verify({ policy: "quarantine" }), recorder(stored));
    await send(
      server.port,
      { from: "alice@example.com" },
      await message({ from: "alice@example.com" }),
      "127.0.0.2",
    );
    expect(stored[0]?.text).toMatch(
      /^Authentication-Results: [\s\S]*\r\nX-Quarantine: DMARC policy reject of example\.com\r\nFrom: /,
    );
    expect(stored[0]?.quarantine).toBe(true);
    expect(stored[0]?.authentication?.action).toBe("quarantine");
  });

  test("a domain whose DNS does not answer: 451 4.7.24 at MAIL, in bounded time", async () => {
    const stored: Stored[] = [];
    const server = await start(verify(), recorder(stored));
    const started = Date.now();
    await expect(
      send(
        server.port,
        { from: "dave@down.example.net" },
        await message({ from: "dave@down.example.net" }),
      ),
    ).rejects.toMatchObject({
      responseCode: 451,
      response: expect.stringMatching(/^451 4\.7\.24 /),
    });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(stored).toEqual([]);
  });

  test("the same with onTempError: tag is accepted and says spf=temperror", async () => {
    const stored: Stored[] = [];
    const server = await start(verify({ onTempError: "tag", checks: ["spf"] }), recorder(stored));
    await send(
      server.port,
      { from: "dave@down.example.net" },
      await message({ from: "dave@down.example.net" }),
    );
    expect(authResults(stored[0]?.text ?? "")).toMatch(/^mx\.test; spf=temperror/);
    expect(stored[0]?.authentication?.dkim).toBeNull();
  });

  test.skipIf(swaksMissing)(
    `swaks spoofing example.com from an unlisted address gets 550 under the reject policy${swaksMissing ? ` [skip: ${swaksMissing}]` : ""}`,
    async () => {
      const stored: Stored[] = [];
      const server = await start(verify({ policy: "reject" }), recorder(stored));
      const run = await output("swaks", [
        "--server",
        `127.0.0.1:${server.port}`,
        "--local-interface",
        "127.0.0.2",
        "--from",
        "ceo@example.com",
        "--to",
        "bob@example.net",
        "--helo",
        "spoofer.example",
        "--header",
        "From: ceo@example.com",
        "--header",
        "Subject: wire transfer",
        "--body",
        "Please pay.",
        "--timeout",
        "20",
      ]);
      expect(run).toMatch(/<\*\*\s+550 5\.7\.1 /);
      expect(stored).toEqual([]);
    },
  );
});

describe("verifier without a DNS answer", () => {
  const start = serversForEachTest();

  test("a DNS server that never answers: 451, not 250 and not a hang (SPF at MAIL)", async () => {
    const silent = await silentDnsServer();
    try {
      const stored: Stored[] = [];
      const server = await start(
        verifier({ dnsServer: silent.server, dnsTimeout: 1000 }),
        recorder(stored),
      );
      const started = Date.now();
      await expect(
        send(server.port, { from: "alice@example.com" }, "From: alice@example.com\r\n\r\nhi\r\n"),
      ).rejects.toMatchObject({ responseCode: 451 });
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(stored).toEqual([]);
    } finally {
      await silent.close();
    }
  });

  test("the same for the DKIM key and DMARC lookups at the end of data: 451 4.7.0", async () => {
    const silent = await silentDnsServer();
    try {
      const stored: Stored[] = [];
      const server = await start(
        verifier({ dnsServer: silent.server, dnsTimeout: 1000, checks: ["dkim", "dmarc"] }),
        recorder(stored),
      );
      const raw = await message({ from: "alice@example.com", signingDomain: "example.com" });
      await expect(send(server.port, { from: "alice@example.com" }, raw)).rejects.toMatchObject({
        responseCode: 451,
        response: expect.stringMatching(/^451 4\.7\.0 /),
      });
      expect(stored).toEqual([]);
    } finally {
      await silent.close();
    }
  });
});
