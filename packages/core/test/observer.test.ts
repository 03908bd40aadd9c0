import { fc, test as fcTest } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import type { Handler } from "../src/server/handler.js";
import { combineObservers, OBSERVER_EVENTS, SMTP, type SmtpObserver } from "../src/server/index.js";
import type { SmtpOptions } from "../src/server/smtp-options.js";
import { MemoryTransport } from "./helpers/memory-transport.js";

type Seen = [string, Record<string, unknown>];

/** An observer recording every event as `[name, fields]`, the session replaced by its id. */
function recorder(names: readonly string[] = OBSERVER_EVENTS): {
  observer: SmtpObserver;
  seen: Seen[];
} {
  const seen: Seen[] = [];
  const observer: Record<string, (event: Record<string, unknown>) => void> = {};
  for (const name of names) {
    observer[name] = ({ session, ...rest }) => {
      const id = (session as { id?: string } | null)?.id ?? null;
      seen.push([name, { sessionId: id, ...rest }]);
    };
  }
  return { observer: observer as SmtpObserver, seen };
}

function start(handler: Handler, options: SmtpOptions, transport = new MemoryTransport()) {
  const server = new SMTP(handler, { hostname: "mx.test", ...options });
  const done = server.run(transport);
  return { server, transport, done };
}

const names = (seen: Seen[], name: string) => seen.filter(([n]) => n === name).map(([, e]) => e);

describe("the session observer", () => {
  test("a transaction: connect, commands, mail/rcpt/data with one transaction id, replies, close", async () => {
    const { observer, seen } = recorder();
    const { transport, done, server } = start(
      {
        handleRCPT: (_s, _session, _e, address) =>
          address.startsWith("x") ? "550 5.1.1 no" : undefined,
      },
      { observer },
    );
    await transport.replies(1);
    await transport.command("EHLO client.test", 1);
    await transport.command("MAIL FROM:<a@example.com>");
    await transport.command("RCPT TO:<b@example.com>");
    await transport.command("RCPT TO:<x@example.com>");
    await transport.command("DATA");
    await transport.command("Subject: hi\r\n\r\nHello\r\n.");
    await transport.command("QUIT");
    await done;
    const id = server.session.id;
    expect(id).not.toBe("");
    expect(seen[0]).toEqual(["connect", { sessionId: id }]);
    expect(seen.at(-1)?.[0]).toBe("close");
    expect(seen.every(([, e]) => e.sessionId === id)).toBe(true);
    const transactionId = `${id}.1`;
    expect(names(seen, "mail")).toEqual([
      { sessionId: id, transactionId, address: "a@example.com", code: 250 },
    ]);
    expect(names(seen, "rcpt")).toEqual([
      { sessionId: id, transactionId, address: "b@example.com", code: 250 },
      { sessionId: id, transactionId, address: "x@example.com", code: 550 },
    ]);
    expect(names(seen, "reject")).toEqual([
      { sessionId: id, transactionId, command: "RCPT", code: 550 },
    ]);
    const [data] = names(seen, "data");
    expect(data).toMatchObject({
      transactionId,
      from: "a@example.com",
      result: "accepted",
      code: 250,
      recipients: 1,
    });
    expect(data?.bytes).toBe("Subject: hi\r\n\r\nHello\r\n".length);
    expect(typeof data?.durationMs).toBe("number");
    expect(names(seen, "command").map((e) => e.verb)).toEqual([
      "EHLO",
      "MAIL",
      "RCPT",
      "RCPT",
      "DATA",
      "QUIT",
    ]);
    expect(names(seen, "reply").map((e) => e.code)).toEqual([
      220, 250, 250, 250, 550, 354, 250, 221,
    ]);
    const [close] = names(seen, "close");
    expect(close).toMatchObject({ reason: "quit" });
    expect(close?.bytesIn).toBeGreaterThan(90);
    expect(close?.bytesOut).toBeGreaterThan(150);
  });

  test("engine refusals and limits: too many recipients, an oversized body, a bad sequence", async () => {
    const { observer, seen } = recorder();
    const { transport, done } = start({}, { observer, maxRecipients: 1, dataSizeLimit: 10 });
    await transport.replies(1);
    await transport.command("EHLO client.test", 1);
    await transport.command("RCPT TO:<b@example.com>");
    await transport.command("MAIL FROM:<a@example.com>");
    await transport.command("RCPT TO:<b@example.com>");
    await transport.command("RCPT TO:<c@example.com>");
    await transport.command("DATA");
    await transport.command("this body is longer than ten octets\r\n.");
    await transport.command("QUIT");
    await done;
    expect(names(seen, "reject").map((e) => [e.command, e.code])).toEqual([
      ["RCPT", 503],
      ["RCPT", 452],
      ["DATA", 552],
    ]);
    expect(names(seen, "limit").map((e) => [e.limit, e.code])).toEqual([
      ["maxRecipients", 452],
      ["dataSizeLimit", 552],
    ]);
    expect(names(seen, "data")).toMatchObject([{ result: "rejected", code: 552, recipients: 1 }]);
  });

  test("AUTH verdicts by mechanism, and the transcript never holds credentials", async () => {
    const { observer, seen } = recorder();
    const secret = "s3cr3t-password";
    const { transport, done } = start(
      {},
      {
        observer,
        authenticator: (_s, _session, _e, _m, data) => ({
          success:
            new TextDecoder().decode((data as { password: Uint8Array }).password) === "right",
        }),
      },
      new MemoryTransport({ implicitTls: true }),
    );
    await transport.replies(1);
    await transport.command("EHLO client.test", 1);
    await transport.command(`AUTH PLAIN ${btoa(`\0alice\0${secret}`)}`);
    await transport.command("AUTH LOGIN");
    await transport.command(btoa("alice"));
    await transport.command(btoa(secret));
    await transport.command(`AUTH PLAIN ${btoa("\0alice\0right")}`);
    await transport.command("QUIT");
    await done;
    expect(names(seen, "auth").map((e) => [e.mechanism, e.success])).toEqual([
      ["PLAIN", false],
      ["LOGIN", false],
      ["PLAIN", true],
    ]);
    expect(names(seen, "tls")).toMatchObject([{ implicit: true }]);
    const transcript = names(seen, "transcript").map((e) => `${e.from} ${e.line}`);
    expect(transcript).toContain("client > AUTH PLAIN ********");
    expect(transcript).toContain("client > ********");
    expect(transcript).toContain("server < 235 2.7.0 Authentication successful");
    const text = JSON.stringify(seen);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(btoa(`\0alice\0${secret}`));
    expect(text).not.toContain(btoa(secret));
  });

  test("a timeout is a limit; a throwing observer is logged and the session goes on", async () => {
    const lines: string[] = [];
    const logger = { error: (m: string) => lines.push(m), info: () => {}, debug: () => {} };
    const { observer, seen } = recorder(["limit", "close"]);
    const throwing: SmtpObserver = {
      command() {
        throw new Error("observer broke");
      },
    };
    const { transport, done } = start(
      {},
      { observer: combineObservers(observer, throwing), logger, timeout: 0.2 },
    );
    await transport.replies(1);
    expect(await transport.command("NOOP")).toEqual(["250 2.0.0 OK"]);
    await transport.replies(1); // the 421 after the timeout
    await done;
    expect(
      lines.some((line) => line.includes("observer command failed: Error: observer broke")),
    ).toBe(true);
    expect(names(seen, "limit")).toMatchObject([{ limit: "timeout", code: 421 }]);
    expect(names(seen, "close")).toMatchObject([{ reason: "timeout" }]);
  });

  test("combineObservers calls every observer's method in order, class methods included", () => {
    const calls: string[] = [];
    class Counting {
      connect() {
        calls.push("class");
      }
    }
    const combined = combineObservers(new Counting(), { connect: () => void calls.push("object") });
    combined.connect?.({ session: {} as never });
    expect(calls).toEqual(["class", "object"]);
    expect(combined.close).toBeUndefined();
  });

  fcTest.prop([fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 30 })], { numRuns: 40 })(
    "any split of pipelined input gives the same events",
    async (cuts) => {
      const input =
        "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nNONSENSE\r\nDATA\r\n" +
        "Subject: s\r\n\r\nbody\r\n.\r\nRSET\r\nQUIT\r\n";
      const run = async (pieces: string[]) => {
        const { observer, seen } = recorder();
        const { transport, done } = start({}, { observer });
        for (const piece of pieces) transport.send(piece);
        await done;
        // Replies go out when the server waits for input, so how they interleave with the
        // client's events depends on the split; each kind's own sequence does not.
        const kinds = OBSERVER_EVENTS.flatMap((kind) => [`${kind} client`, `${kind} server`, kind]);
        const kindOf = ([name, { from }]: Seen) => (from ? `${name} ${from}` : name);
        return kinds
          .flatMap((kind) => seen.filter((event) => kindOf(event) === kind))
          .filter(([name]) => name !== "close")
          .map(([name, { sessionId: _id, transactionId, durationMs: _d, ...rest }]) => [
            name,
            { ...rest, transaction: typeof transactionId === "string" },
          ]);
      };
      const pieces: string[] = [];
      let at = 0;
      for (const cut of cuts) {
        if (at >= input.length) break;
        pieces.push(input.slice(at, at + cut));
        at += cut;
      }
      if (at < input.length) pieces.push(input.slice(at));
      expect(await run(pieces)).toEqual(await run([input]));
    },
  );
});
