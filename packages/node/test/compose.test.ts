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

  test("a fragment's auth_NAME mechanism is kept, called on its fragment", async () => {
    class Tokens {
      readonly token = "sesame";
      auth_TOKEN(_server: unknown, args: string[]) {
        const given = Buffer.from(args[1] ?? "", "base64").toString();
        return given === this.token ? { success: true, authData: "tokens" } : { success: false };
      }
    }
    const server = await start(compose(new Tokens() as Handler, { handleRCPT: () => undefined }), {
      authRequireTls: false,
    });
    const client = await open(server);
    await client.reply();
    expect(await client.command("EHLO client.test")).toMatch(/AUTH .*TOKEN/);
    expect(await client.command(`AUTH TOKEN ${Buffer.from("sesame").toString("base64")}`)).toMatch(
      /^235 /,
    );
  });

  describe("body stages (filterBody)", () => {
    const send = (port: number, raw: string | Buffer) =>
      nodemailer
        .createTransport({ host: "127.0.0.1", port })
        .sendMail({ envelope: { from: "a@b.test", to: ["c@d.test"] }, raw });

    /** A delivery that records each body it stores. */
    function store(bodies: string[]): Handler {
      return {
        async handleDATAStream(_s, _ss, _e, body) {
          bodies.push(new TextDecoder().decode(await body.bytes()));
          return "250 2.0.0 Stored";
        },
      };
    }

    test("stages prepend header lines in order; the delivery gets the message after them", async () => {
      const bodies: string[] = [];
      const trace: Handler = { filterBody: () => ({ prepend: "Received: by mx.test\r\n" }) };
      const verdict: Handler = {
        filterBody: () => ({ prepend: new TextEncoder().encode("X-Verdict: ok\r\n") }),
      };
      const server = await start(compose(trace, verdict, store(bodies)));
      const info = await send(server.port, "Subject: x\r\n\r\nhello\r\n");
      expect(info.response).toBe("250 2.0.0 Stored");
      // The second stage's lines come first: it prepends to what the first one handed on.
      expect(bodies).toEqual([
        "X-Verdict: ok\r\nReceived: by mx.test\r\nSubject: x\r\n\r\nhello\r\n",
      ]);
    });

    test("a stage that reads the whole body hands on its copy; a handleDATA delivery sees it in content", async () => {
      const contents: string[] = [];
      const reader: Handler = {
        async filterBody(_s, _ss, _e, body) {
          const chunks: Uint8Array[] = [];
          for await (const chunk of body) chunks.push(chunk);
          const size = chunks.reduce((n, c) => n + c.length, 0);
          return {
            prepend: `X-Size: ${size}\r\n`,
            body: (async function* () {
              yield* chunks;
            })(),
          };
        },
      };
      const delivery: Handler = {
        handleDATA: (_s, _ss, envelope) => {
          contents.push(new TextDecoder().decode(envelope.content as Uint8Array));
          return "250 2.0.0 Kept";
        },
      };
      const server = await start(compose(reader, delivery));
      const info = await send(server.port, "Subject: y\r\n\r\n12345\r\n");
      expect(info.response).toBe("250 2.0.0 Kept");
      expect(contents).toEqual(["X-Size: 21\r\nSubject: y\r\n\r\n12345\r\n"]);
    });

    test("a stage's reply refuses the message and the delivery is never called", async () => {
      const bodies: string[] = [];
      const refuse: Handler = {
        async filterBody(_s, _ss, _e, body) {
          await body.bytes();
          return "550 5.7.1 Refused by policy";
        },
      };
      const server = await start(compose(refuse, store(bodies)));
      await expect(send(server.port, "Subject: z\r\n\r\nno\r\n")).rejects.toMatchObject({
        responseCode: 550,
        response: "550 5.7.1 Refused by policy",
      });
      expect(bodies).toEqual([]);
    });

    test("a stage that read the body and handed none on is an error, not an empty message", async () => {
      const bodies: string[] = [];
      const careless: Handler = {
        async filterBody(_s, _ss, _e, body) {
          await body.bytes();
        },
      };
      const server = await start(compose(careless, store(bodies)));
      await expect(send(server.port, "Subject: z\r\n\r\nlost\r\n")).rejects.toMatchObject({
        response: expect.stringMatching(/^500 .*handed none on/),
      });
      expect(bodies).toEqual([]);
    });

    test("a delivery that stops early stops the replay it was given", async () => {
      let replayClosed = false;
      const keep: Handler = {
        async filterBody(_s, _ss, _e, body) {
          await body.bytes();
          return {
            body: (async function* () {
              try {
                for (let i = 0; i < 1000; i++) yield new Uint8Array(64 * 1024);
              } finally {
                replayClosed = true;
              }
            })(),
          };
        },
      };
      const early: Handler = {
        async handleDATAStream(_s, _ss, _e, body) {
          const reader = body.getReader();
          await reader.read();
          return "451 4.3.0 Not now";
        },
      };
      const server = await start(compose(keep, early));
      await expect(send(server.port, "Subject: q\r\n\r\nx\r\n")).rejects.toMatchObject({
        responseCode: 451,
      });
      await expect.poll(() => replayClosed).toBe(true);
    });

    test("a body over the size limit fails through the stages: 552, nothing stored", async () => {
      const bodies: string[] = [];
      const trace: Handler = { filterBody: () => ({ prepend: "Received: by mx.test\r\n" }) };
      const server = await start(compose(trace, store(bodies)), { dataSizeLimit: 100_000 });
      const raw = `Subject: big\r\n\r\n${"x".repeat(998)}\r\n`.repeat(200);
      await expect(send(server.port, raw)).rejects.toMatchObject({ responseCode: 552 });
      expect(bodies).toEqual([]);
    });

    test("a 20 MB message streams through a stage with backpressure", async () => {
      let size = 0;
      const trace: Handler = { filterBody: () => ({ prepend: "Received: by mx.test\r\n" }) };
      const count: Handler = {
        async handleDATAStream(_s, _ss, _e, body) {
          for await (const chunk of body) size += chunk.length;
          return "250 2.0.0 Counted";
        },
      };
      const server = await start(compose(trace, count), { dataSizeLimit: 64 * 1024 * 1024 });
      const line = `${"y".repeat(998)}\r\n`;
      const raw = Buffer.from(`Subject: big\r\n\r\n${line.repeat(20_000)}`);
      const info = await send(server.port, raw);
      expect(info.response).toBe("250 2.0.0 Counted");
      expect(size).toBe(raw.length + "Received: by mx.test\r\n".length);
    });
  });
});
