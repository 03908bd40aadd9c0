// compose(): handler fragments chained in order, over real sockets with a raw client and Nodemailer.

import nodemailer from "nodemailer";
import { describe, expect, test } from "vitest";
import { compose, type Handler } from "../src/index.js";
import { servedForEachTest } from "./served.js";

const { start, open } = servedForEachTest();

/** Records the order in which fragments see each step. */
function recorder(name: string, seen: string[], extra: Partial<Handler> = {}): Handler {
  return {
    handleMAIL: async () => {
      seen.push(`${name}:MAIL`);
    },
    handleRCPT: () => {
      seen.push(`${name}:RCPT`);
    },
    ...extra,
  };
}

describe("compose", () => {
  test("fragments run in order; the first answer decides and the rest are not asked", async () => {
    const seen: string[] = [];
    const refuseBad = recorder("policy", seen, {
      handleRCPT: (_s, _ss, _e, address) => {
        seen.push("policy:RCPT");
        return address.startsWith("bad@") ? "550 5.7.1 Not this one" : undefined;
      },
    });
    const server = await start(compose(refuseBad, recorder("log", seen)));
    const client = await open(server);
    await client.reply();
    await client.command("EHLO client.test");
    expect(await client.command("MAIL FROM:<a@b.test>")).toMatch(/^250 /);
    expect(await client.command("RCPT TO:<bad@d.test>")).toBe("550 5.7.1 Not this one");
    expect(await client.command("RCPT TO:<good@d.test>")).toMatch(/^250 /);
    expect(seen).toEqual(["policy:MAIL", "log:MAIL", "policy:RCPT", "policy:RCPT", "log:RCPT"]);
  });

  test("the one delivering fragment gets the body; handleCLOSE runs in every fragment", async () => {
    const closed: string[] = [];
    const bodies: string[] = [];
    const delivery: Handler = {
      async handleDATAStream(_s, _ss, envelope, body) {
        bodies.push(
          `${envelope.rcptTos.join(",")}:${new TextDecoder().decode(await body.bytes())}`,
        );
        return "250 2.0.0 Delivered";
      },
      handleCLOSE: () => {
        closed.push("delivery");
      },
    };
    const audit: Handler = {
      handleCLOSE: (_s, _ss, reason) => {
        closed.push(`audit:${reason}`);
        throw new Error("a failing close hook does not stop the others");
      },
    };
    const server = await start(compose(audit, delivery));
    const info = await nodemailer
      .createTransport({ host: "127.0.0.1", port: server.port })
      .sendMail({
        envelope: { from: "a@b.test", to: ["c@d.test"] },
        raw: "Subject: x\r\n\r\nhello\r\n",
      });
    expect(info.response).toBe("250 2.0.0 Delivered");
    expect(bodies).toEqual(["c@d.test:Subject: x\r\n\r\nhello\r\n"]);
    // Nodemailer may close before reading the reply to its QUIT: the reason is quit or eof.
    await expect.poll(() => closed.length).toBe(2);
    expect(closed[0]).toMatch(/^audit:(quit|eof)$/);
    expect(closed[1]).toBe("delivery");
  });

  test("handleEHLO is a pipeline: each fragment edits the previous one's keywords", async () => {
    const dropHelp: Handler = {
      handleEHLO: (_s, _ss, _e, _h, responses) => responses.filter((line) => !/HELP/.test(line)),
    };
    const addPing: Handler = {
      handleEHLO: (_s, _ss, _e, _h, responses) => [
        ...responses.slice(0, -1),
        (responses.at(-1) as string).replace(/^250 /, "250-"),
        "250 PING",
      ],
    };
    const server = await start(compose(dropHelp, addPing));
    const client = await open(server);
    await client.reply();
    const ehlo = await client.command("EHLO client.test");
    expect(ehlo).not.toMatch(/HELP/);
    expect(ehlo).toMatch(/\n250 PING$/);
  });

  test("a fragment's auth_NAME mechanisms stay offered and run on their fragment", async () => {
    class Tokens {
      readonly token = "s3cret";
      auth_TOKEN(_server: unknown, args: string[]) {
        const given = Buffer.from(args[1] ?? "", "base64").toString();
        return given === this.token
          ? { success: true, authData: "token-user" }
          : { success: false };
      }
      handleDATA() {
        return "250 2.0.0 Stored";
      }
    }
    const server = await start(compose({ handleMAIL: () => undefined }, new Tokens()), {
      authRequireTls: false,
    });
    const client = await open(server);
    await client.reply();
    expect(await client.command("EHLO client.test")).toMatch(/AUTH .*TOKEN/);
    expect(await client.command(`AUTH TOKEN ${Buffer.from("wrong").toString("base64")}`)).toMatch(
      /^535 /,
    );
    expect(await client.command(`AUTH TOKEN ${Buffer.from("s3cret").toString("base64")}`)).toMatch(
      /^235 /,
    );
  });

  test("two fragments that both take the body are refused when composing", () => {
    const a: Handler = { handleDATA: () => "250 OK" };
    const b: Handler = { handleDATAStream: async () => "250 OK" };
    expect(() => compose(a, b)).toThrow(/only one fragment can take the body/);
  });

  test("a handleCONNECT decision from an early fragment refuses before the greeting", async () => {
    const gate: Handler = {
      handleCONNECT: (_s, session) =>
        session.peer?.address === "127.0.0.1" ? "421 4.7.0 Closed to you" : undefined,
    };
    const never: Handler = {
      handleCONNECT: () => {
        throw new Error("not reached: the gate decided");
      },
    };
    const server = await start(compose(gate, never));
    const client = await open(server);
    expect(await client.reply()).toBe("421 4.7.0 Closed to you");
    await client.closed();
  });
});
