// deferGreeting: the greeting as a decision (connection policy), straight on the engine.
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { ServerConnection } from "../src/engine/connection.js";
import { LocalProtocolError } from "../src/errors.js";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Feeds `input` in the given pieces, answering every event by default; returns all output. */
function drive(connection: ServerConnection, pieces: readonly string[]): string {
  let out = decoder.decode(connection.dataToSend());
  for (const piece of [...pieces, ""]) {
    connection.receiveData(encoder.encode(piece));
    for (;;) {
      const event = connection.nextEvent();
      if (event.type === "needData" || event.type === "closed" || event.type === "paused") break;
      if (event.type === "connect") throw new Error("connect after the decision");
      if (["hello", "mail", "rcpt", "rset", "noop", "quit", "vrfy"].includes(event.type))
        connection.accept();
      else if (event.type === "bodyEnd" && event.error === null) connection.accept();
    }
    out += decoder.decode(connection.dataToSend());
    if (connection.phase === "closed") break;
  }
  return out;
}

function deferred(): ServerConnection {
  const connection = new ServerConnection({ hostname: "mx.test", deferGreeting: true });
  expect(connection.nextEvent()).toEqual({ type: "connect" });
  expect(connection.dataToSend()).toHaveLength(0);
  return connection;
}

describe("deferGreeting", () => {
  it("accept() greets; input sent before the decision is served after the greeting", () => {
    const connection = deferred();
    connection.receiveData(encoder.encode("NOOP\r\n"));
    expect(connection.accept()).toBe(220);
    const out = drive(connection, ["QUIT\r\n"]);
    expect(out).toMatch(/^220 mx\.test .*\r\n250 2\.0\.0 OK\r\n221 2\.0\.0 Bye\r\n$/s);
  });

  it("a 421 replaces the greeting and closes; a 554 answers 503 until QUIT", () => {
    const closing = deferred();
    expect(closing.reply("421 4.7.0 Not now")).toBe(421);
    expect(decoder.decode(closing.dataToSend())).toBe("421 4.7.0 Not now\r\n");
    expect(closing.nextEvent()).toEqual({ type: "closed", reason: "closedByServer" });

    const refusing = deferred();
    refusing.reply("554 5.7.1 No");
    const out = drive(refusing, ["EHLO a\r\nMAIL FROM:<a@b>\r\nQUIT\r\n"]);
    expect(out).toBe(
      "554 5.7.1 No\r\n503 5.5.1 Error: session refused, send QUIT\r\n" +
        "503 5.5.1 Error: session refused, send QUIT\r\n221 2.0.0 Bye\r\n",
    );
  });

  it("refuses a 2xx other than 220 and a 3xx", () => {
    expect(() => deferred().reply("250 OK")).toThrow(LocalProtocolError);
    expect(() => deferred().reply("354 go")).toThrow(LocalProtocolError);
  });

  test.prop([
    fc.array(
      fc.constantFrom(
        "EHLO a\r\n",
        "MAIL FROM:<a@b>\r\n",
        "RCPT TO:<c@d>\r\n",
        "DATA\r\n",
        "x\r\n",
        ".\r\n",
        "NOOP\r\n",
        "RSET\r\n",
        "BDAT 1 LAST\r\n",
        "\r\n",
        "garbage\r\n",
      ),
      { maxLength: 12 },
    ),
    fc.integer({ min: 1, max: 9 }),
  ])(
    "after a 554 every command but QUIT gets 503, however the input is split",
    (commands, size) => {
      const input = `${commands.join("")}QUIT\r\n`;
      const whole = deferred();
      whole.reply("554 5.7.1 No");
      const expected = drive(whole, [input]);
      const split = deferred();
      split.reply("554 5.7.1 No");
      const pieces: string[] = [];
      for (let i = 0; i < input.length; i += size) pieces.push(input.slice(i, i + size));
      expect(drive(split, pieces)).toBe(expected);
      const replies = expected.split("\r\n").filter(Boolean);
      expect(replies.at(-1)).toMatch(/^221 /);
      for (const line of replies.slice(1, -1)) expect(line).toMatch(/^50[03] /);
    },
  );
});
