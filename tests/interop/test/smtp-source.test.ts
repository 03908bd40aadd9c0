/**
 * Postfix's smtp-source (the load of apps/bench) against `serve()`: every message and every
 * recipient it sends arrives, with the body it sent. smtp-source sends HELO, one command at a time,
 * From/To/Date/Message-Id headers and then its payload: `-l N` is N bytes of `X` lines (CRLF
 * included), without `-l` four "La de da de da N." lines.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  killChildren,
  LOCALHOST,
  type Received,
  recordingHandler,
  requireBuilt,
  requirePrograms,
  run,
  which,
  withServerNamed,
} from "./helpers.js";

const HOSTNAME = "mx.interop.test";
/** The HELO name and the domain of smtp-source's addresses (`-M`). */
const CLIENT = "source.interop.test";

/** smtp-source lives in /usr/sbin, which is not on every user's PATH. */
const smtpSource = (): string =>
  which("smtp-source") ?? (existsSync("/usr/sbin/smtp-source") ? "/usr/sbin/smtp-source" : "");

beforeAll(() => {
  requireBuilt();
  if (smtpSource() === "") requirePrograms({ "smtp-source": "postfix" });
});

afterAll(() => killChildren());

/** Header block and payload of one message (split at the first empty line). */
function split(message: Received): { headers: string; payload: string } {
  const text = message.content.toString("latin1");
  const blank = text.indexOf("\r\n\r\n");
  expect(blank, "header/body separator").toBeGreaterThan(0);
  return { headers: text.slice(0, blank + 2), payload: text.slice(blank + 4) };
}

function expectHeaders(headers: string): void {
  expect(headers).toMatch(
    new RegExp(
      `^From: <foo@${CLIENT}>\\r\\nTo: <foo@${CLIENT}>\\r\\nDate: [^\\r\\n]+\\r\\nMessage-Id: <[^\\r\\n]+@${CLIENT}>\\r\\n$`,
    ),
  );
}

describe("smtp-source", () => {
  it("-c -d -s 5 -m 50 -l 1024: 50 messages over 5 connections, 1 KB payload each", async () => {
    const rec = recordingHandler();
    await withServerNamed(HOSTNAME, rec.handler, {}, async (server) => {
      const result = await run(
        smtpSource(),
        [
          "-c",
          "-d",
          "-s",
          "5",
          "-m",
          "50",
          "-l",
          "1024",
          "-M",
          CLIENT,
          `${LOCALHOST}:${server.port}`,
        ],
        { timeoutMs: 30_000 },
      );
      expect(result.code, result.stderr).toBe(0);
      // -c: a running counter, one value per DATA that got its 250.
      expect(
        result.stdout
          .trim()
          .split(/[\r\n]+/)
          .pop(),
      ).toBe("50");
      const messages = await rec.waitForMessages(50);
      expect(messages).toHaveLength(50);
      // -d keeps each connection for the next message: 5 sessions, so 5 HELOs.
      expect(rec.calls.filter((c) => c.hook === "handleHELO")).toHaveLength(5);
      for (const message of messages) {
        expect(message.mailFrom).toBe(`foo@${CLIENT}`);
        expect(message.rcptTos).toEqual([`foo@${CLIENT}`]);
        const { headers, payload } = split(message);
        expectHeaders(headers);
        // 1024 payload bytes, then the CRLF that ends the last line.
        expect(payload.length).toBe(1026);
        expect(payload).toMatch(/^[0-9X\r\n]+\r\n$/);
        expect(payload.split("\r\n").every((line) => line.length <= 80)).toBe(true);
      }
    });
  });

  it("-s 5 -m 20 -r 100: 20 messages, one per connection, 100 recipients each", async () => {
    const rec = recordingHandler();
    await withServerNamed(HOSTNAME, rec.handler, {}, async (server) => {
      const result = await run(
        smtpSource(),
        ["-s", "5", "-m", "20", "-r", "100", "-M", CLIENT, `${LOCALHOST}:${server.port}`],
        { timeoutMs: 30_000 },
      );
      expect(result.code, result.stderr).toBe(0);
      const messages = await rec.waitForMessages(20);
      expect(messages).toHaveLength(20);
      // Without -d every message has its own connection.
      expect(rec.calls.filter((c) => c.hook === "handleHELO")).toHaveLength(20);
      expect(rec.calls.filter((c) => c.hook === "handleRCPT")).toHaveLength(2000);
      for (const message of messages) {
        expect(message.mailFrom).toBe(`foo@${CLIENT}`);
        expect(message.rcptTos).toHaveLength(100);
        expect(new Set(message.rcptTos).size).toBe(100);
        for (const rcpt of message.rcptTos) expect(rcpt).toMatch(new RegExp(`^\\d*foo@${CLIENT}$`));
        const { headers, payload } = split(message);
        expectHeaders(headers);
        expect(payload).toBe([1, 2, 3, 4].map((n) => `La de da de da ${n}.\r\n`).join(""));
      }
    });
  });
});
