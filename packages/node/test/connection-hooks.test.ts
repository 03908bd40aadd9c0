// handleCONNECT / handleCLOSE, the session's identity and the AUTH attempt and verdict hooks,
// over real sockets with a raw line client and Nodemailer.
import type { AuthVerdict, CloseReason } from "@smtpkit/core/server";
import nodemailer from "nodemailer";
import { describe, expect, test } from "vitest";
import type { Handler } from "../src/index.js";
import { delay, waitFor } from "./helpers.js";
import { servedForEachTest } from "./served.js";

const { start, open } = servedForEachTest();

function plain(login: string, password: string): string {
  return Buffer.from(`\0${login}\0${password}`).toString("base64");
}

describe("handleCONNECT", () => {
  test("a 554 refusal keeps the connection until QUIT and answers 503 to the rest (RFC 5321 §3.1)", async () => {
    const server = await start({ handleCONNECT: () => "554 5.7.1 Not from your address" });
    const client = await open(server);
    expect(await client.reply()).toBe("554 5.7.1 Not from your address");
    expect(await client.command("EHLO client.test")).toMatch(/^503 5\.5\.1 /);
    expect(await client.command("MAIL FROM:<a@b.test>")).toMatch(/^503 5\.5\.1 /);
    expect(await client.command("QUIT")).toMatch(/^221 /);
    await client.closed();
  });

  test("a 421 refusal closes at once, and Nodemailer sees it", async () => {
    const server = await start({ handleCONNECT: () => "421 4.7.0 Try again later" });
    const client = await open(server);
    expect(await client.reply()).toBe("421 4.7.0 Try again later");
    await client.closed();
    const transport = nodemailer.createTransport({ host: "127.0.0.1", port: server.port });
    await expect(
      transport.sendMail({ from: "a@b.test", to: "c@d.test", text: "x" }),
    ).rejects.toThrow(/421/);
  });

  test("a greet pause delays the greeting; a patient client is served", async () => {
    const server = await start({ handleCONNECT: () => ({ delay: 400 }) });
    const started = Date.now();
    const client = await open(server);
    expect(await client.reply()).toMatch(/^220 mx\.test /);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(await client.command("EHLO client.test")).toMatch(/^250[ -]/);
    const transport = nodemailer.createTransport({ host: "127.0.0.1", port: server.port });
    const info = await transport.sendMail({ from: "a@b.test", to: "c@d.test", text: "paused" });
    expect(info.accepted).toEqual(["c@d.test"]);
  });

  test("an early talker is refused with 521; with earlyTalkers: allow its command is served", async () => {
    const handler: Handler = { handleCONNECT: () => ({ delay: 500 }) };
    const strict = await start(handler);
    const talker = await open(strict);
    await talker.write("EHLO hasty.test\r\n");
    expect(await talker.reply()).toBe("521 5.5.1 Error: talked before the greeting");
    await talker.closed();

    const lenient = await start(handler, { earlyTalkers: "allow" });
    const client = await open(lenient);
    await client.write("EHLO hasty.test\r\n");
    expect(await client.reply()).toMatch(/^220 /);
    expect(await client.reply()).toMatch(/^250[ -]/);
  });

  test("a 220 reply is a custom greeting", async () => {
    const server = await start({ handleCONNECT: () => "220 mx.test ESMTP welcome" });
    const client = await open(server);
    expect(await client.reply()).toBe("220 mx.test ESMTP welcome");
    expect(await client.command("NOOP")).toMatch(/^250 /);
  });
});

describe("handleCLOSE", () => {
  test("is called once per connection with what ended it", async () => {
    const reasons: CloseReason[] = [];
    const ids: string[] = [];
    const handler: Handler = {
      handleCONNECT: () => undefined,
      handleCLOSE: (_server, session, reason) => {
        reasons.push(reason);
        ids.push(session.id);
      },
    };
    const server = await start(handler, { timeout: 1 });
    const quitter = await open(server);
    await quitter.reply();
    expect(await quitter.command("QUIT")).toMatch(/^221 /);
    await waitFor(() => reasons.length === 1);
    const leaver = await open(server);
    await leaver.reply();
    leaver.destroy();
    await waitFor(() => reasons.length === 2);
    const idle = await open(server);
    await idle.reply();
    expect(await idle.reply()).toMatch(/^421 4\.4\.2 /);
    await waitFor(() => reasons.length === 3);
    expect(reasons).toEqual(["quit", "eof", "timeout"]);
    await delay(100);
    expect(reasons).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
  });
});

describe("the session's identity", () => {
  test("id, local address, transport peer and the transmission type", async () => {
    const seen: Record<string, unknown>[] = [];
    const server = await start(
      {
        handleDATA(_server, session) {
          seen.push({
            id: session.id,
            peer: session.peer?.address,
            transportPeer: session.transportPeer?.address,
            localAddress: session.localAddress,
            localPort: session.localPort,
            type: session.transmissionType,
          });
          return "250 OK";
        },
      },
      { authenticator: () => ({ success: true, authData: "user" }), authRequireTls: false },
    );
    const client = await open(server);
    await client.reply();
    await client.command("EHLO client.test");
    for (const line of ["MAIL FROM:<a@b.test>", "RCPT TO:<c@d.test>", "DATA"])
      await client.command(line);
    expect(await client.command("x\r\n.")).toMatch(/^250 /);
    expect(await client.command(`AUTH PLAIN ${plain("user", "pw")}`)).toMatch(/^235 /);
    for (const line of ["MAIL FROM:<a@b.test>", "RCPT TO:<c@d.test>", "DATA"])
      await client.command(line);
    expect(await client.command("x\r\n.")).toMatch(/^250 /);
    expect(seen[0]).toMatchObject({
      peer: "127.0.0.1",
      transportPeer: "127.0.0.1",
      localAddress: "127.0.0.1",
      localPort: server.port,
      type: "ESMTP",
    });
    expect(seen[1]).toMatchObject({ type: "ESMTPA", id: seen[0]?.id });
    expect(String(seen[0]?.id)).toMatch(/^[0-9a-z]{15}$/);
  });

  test("behind a trusted PROXY header the peer is the client it names", async () => {
    let peer: string | undefined;
    let transportPeer: string | undefined;
    const server = await start(
      {
        handleCONNECT(_server, session) {
          peer = session.peer?.address;
          transportPeer = session.transportPeer?.address;
        },
      },
      { proxyProtocolTimeout: 5, proxyTrust: ["127.0.0.0/8"] },
    );
    const client = await open(server);
    await client.write("PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n");
    expect(await client.reply()).toMatch(/^220 /);
    expect(peer).toBe("203.0.113.7");
    expect(transportPeer).toBe("127.0.0.1");
  });
});

describe("AUTH attempt and verdict hooks", () => {
  test("handleAUTHResult hears failures with the claimed login; handleAUTHAttempt refuses before any check", async () => {
    const verdicts: AuthVerdict[] = [];
    let checked = 0;
    const server = await start(
      {
        handleAUTHAttempt: () => (verdicts.length >= 2 ? "454 4.7.0 Too many failures" : undefined),
        handleAUTHResult: (_server, _session, _envelope, verdict) => {
          verdicts.push(verdict);
        },
      },
      {
        authenticator: () => {
          checked++;
          return { success: false };
        },
        authRequireTls: false,
      },
    );
    const client = await open(server);
    await client.reply();
    await client.command("EHLO client.test");
    expect(await client.command(`AUTH PLAIN ${plain("alice", "guess1")}`)).toMatch(/^535 /);
    expect(await client.command(`AUTH PLAIN ${plain("alice", "guess2")}`)).toMatch(/^535 /);
    expect(await client.command(`AUTH PLAIN ${plain("alice", "guess3")}`)).toBe(
      "454 4.7.0 Too many failures",
    );
    expect(checked).toBe(2);
    expect(verdicts).toEqual([
      { mechanism: "PLAIN", success: false, login: "alice" },
      { mechanism: "PLAIN", success: false, login: "alice" },
    ]);
  });
});
