import { execFile } from "node:child_process";
import { authOptions, parseUsersFile } from "@smtpkit/auth";
import { Memory } from "@smtpkit/handlers";
import { compose } from "@smtpkit/node";
import { describe, expect, it } from "vitest";
import { type LimitEvent, limits, MemoryStore } from "../src/index.js";
import { servedForEachTest, until } from "./helpers.js";
import { missing, skipNote } from "./tools.js";

const served = servedForEachTest();
const gsaslMissing = missing("gsasl");

const auth = (mechanisms: string[]) =>
  authOptions({
    users: parseUsersFile("alice:wonderland\nbob:builder\n"),
    mechanisms,
    requireTls: false,
    failedAttempts: false,
  });
const plain = (user: string, password: string) =>
  `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString("base64")}`;

/** One connection, one AUTH PLAIN: the AUTH reply. */
async function tryPlain(
  open: () => ReturnType<typeof served.open>,
  user: string,
  password: string,
): Promise<string> {
  const client = await open();
  await client.reply();
  await client.command("EHLO client");
  const reply = await client.command(plain(user, password));
  client.destroy();
  return reply;
}

describe("failed AUTH per address, across connections", () => {
  it("20 connections with one wrong PLAIN each: the first 5 fail with 535, the rest are refused with 454 before credentials", async () => {
    const events: LimitEvent[] = [];
    const server = await served.start(
      compose(
        limits({ authFailures: { limit: 5, windowMs: 60_000 }, onLimit: (e) => events.push(e) }),
        new Memory(),
      ),
      auth(["PLAIN"]),
    );
    const replies: string[] = [];
    for (let i = 0; i < 20; i++)
      replies.push(await tryPlain(() => served.open(server), `user${i}`, "wrong"));
    expect(replies.slice(0, 5).every((r) => r.startsWith("535 5.7.8"))).toBe(true);
    for (const reply of replies.slice(5))
      expect(reply).toMatch(
        /^454 4\.7\.0 Too many failed authentications from 127\.0\.0\.1 \(at most 5 per 1 min\), retry in \d+ s$/,
      );
    // Refused before any credential was looked at: even the right password.
    expect(await tryPlain(() => served.open(server), "alice", "wonderland")).toMatch(
      /^454 4\.7\.0 /,
    );
    expect(events).toHaveLength(16);
    expect(events[0]).toMatchObject({
      limit: "authFailures",
      subject: "127.0.0.1",
      count: 5,
      max: 5,
    });
    // Another address still logs in.
    expect(await tryPlain(() => served.open(server, "127.0.0.7"), "alice", "wonderland")).toMatch(
      /^235 /,
    );
  });

  it("refusal: 421 closes the connection instead", async () => {
    const server = await served.start(
      compose(limits({ authFailures: { limit: 1, windowMs: 60_000, refusal: 421 } }), new Memory()),
      auth(["PLAIN"]),
    );
    expect(await tryPlain(() => served.open(server), "alice", "nope")).toMatch(/^535 /);
    const client = await served.open(server);
    await client.reply();
    await client.command("EHLO client");
    expect(await client.command(plain("alice", "wonderland"))).toMatch(
      /^421 4\.7\.0 mx\.test Too many failed authentications from 127\.0\.0\.1 /,
    );
    await client.closed();
  });
});

describe("failed AUTH per user, across addresses", () => {
  it("a user over the limit gets 421 4.7.0 whether the password is right or wrong", async () => {
    const store = new MemoryStore();
    const server = await served.start(
      compose(
        limits({ authFailures: { limit: 3, windowMs: 60_000, per: "user" }, store }),
        new Memory(),
      ),
      auth(["PLAIN"]),
    );
    for (let i = 0; i < 3; i++)
      expect(
        await tryPlain(() => served.open(server, `127.0.0.${10 + i}`), "alice", "guess"),
      ).toMatch(/^535 /);
    const locked =
      /^421 4\.7\.0 mx\.test Too many failed authentications for this user, retry in \d+ s$/;
    expect(await tryPlain(() => served.open(server, "127.0.0.20"), "alice", "guess")).toMatch(
      locked,
    );
    expect(await tryPlain(() => served.open(server, "127.0.0.21"), "alice", "wonderland")).toMatch(
      locked,
    );
    // Bob is not locked out by Alice's failures.
    expect(await tryPlain(() => served.open(server, "127.0.0.22"), "bob", "builder")).toMatch(
      /^235 /,
    );
  });
});

describe.skipIf(gsaslMissing)(`SCRAM failures are counted too${skipNote(gsaslMissing)}`, () => {
  const gsasl = (port: number, password: string) =>
    new Promise<string>((resolve) => {
      const child = execFile(
        "gsasl",
        [
          "--smtp",
          "--no-starttls",
          "--mechanism",
          "SCRAM-SHA-256",
          "-a",
          "alice",
          "-p",
          password,
          "127.0.0.1",
          String(port),
        ],
        { timeout: 20_000 },
        (_error, stdout, stderr) => resolve(stdout + stderr),
      );
      child.stdin?.end();
    });

  it("gsasl with a wrong SCRAM-SHA-256 password: counted, then the address is refused with 454", async () => {
    const store = new MemoryStore();
    let counted = 0;
    const server = await served.start(
      compose(limits({ authFailures: { limit: 2, windowMs: 60_000 }, store }), new Memory()),
      auth(["SCRAM-SHA-256"]),
    );
    // gsasl hangs up on the server's `e=invalid-proof`: still a failed verdict, for the address
    // and for the user it claimed.
    const first = await gsasl(server.port, "bad");
    expect(first).toContain("334 ZT1pbnZhbGlkLXByb29m"); // e=invalid-proof
    expect(first).not.toContain("235 ");
    const failures = async () => (await store.get("auth-fail:127.0.0.1")).count;
    let userFailures = 0;
    await until(
      () => userFailures === 1,
      "the user's failure to be counted",
      5000,
      async () => {
        userFailures = (await store.get("auth-fail-user:alice")).count;
      },
    );
    await until(
      () => counted === 1,
      "the first failure to be counted",
      5000,
      async () => {
        counted = await failures();
      },
    );
    await gsasl(server.port, "bad");
    await until(
      () => counted === 2,
      "the second failure to be counted",
      5000,
      async () => {
        counted = await failures();
      },
    );
    const refused = await gsasl(server.port, "wonderland");
    expect(refused).toContain("454 4.7.0 Too many failed authentications from 127.0.0.1");
    expect(refused).not.toContain("235 ");
  });

  it("the right SCRAM password logs in while under the limit", async () => {
    const server = await served.start(
      compose(limits({ authFailures: { limit: 2, windowMs: 60_000 } }), new Memory()),
      auth(["SCRAM-SHA-256"]),
    );
    expect(await gsasl(server.port, "wonderland")).toContain("235 ");
  });
});

describe("SCRAM over a raw socket", () => {
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  const unb64 = (reply: string) => Buffer.from(reply.slice(4), "base64").toString();

  /** SCRAM-SHA-256 up to the server's verdict on a wrong proof; then `ending`. */
  async function wrongProof(
    port: () => ReturnType<typeof served.open>,
    ending: "cancel" | "answer",
  ) {
    const client = await port();
    await client.reply();
    await client.command("EHLO client");
    const serverFirst = unb64(
      await client.command(`AUTH SCRAM-SHA-256 ${b64("n,,n=alice,r=abcdefghijkl")}`),
    );
    const nonce = /r=([^,]+)/.exec(serverFirst)?.[1];
    const proof = Buffer.alloc(32).toString("base64");
    const verdict = await client.command(b64(`c=biws,r=${nonce},p=${proof}`));
    expect(unb64(verdict)).toBe("e=invalid-proof");
    const final = await client.command(ending === "cancel" ? "*" : "");
    client.destroy();
    return final;
  }

  it("a client that cancels with * after e=invalid-proof is counted as failing", async () => {
    const store = new MemoryStore();
    const server = await served.start(
      compose(limits({ authFailures: { limit: 2, windowMs: 60_000 }, store }), new Memory()),
      auth(["SCRAM-SHA-256"]),
    );
    expect(await wrongProof(() => served.open(server), "cancel")).toMatch(/^501 /);
    expect(await wrongProof(() => served.open(server), "answer")).toMatch(/^535 /);
    let count = 0;
    await until(
      () => count === 2,
      "two failures",
      5000,
      async () => {
        count = (await store.get("auth-fail:127.0.0.1")).count;
      },
    );
    // Both were verdicts on alice's proof, the cancelled one included.
    expect((await store.get("auth-fail-user:alice")).count).toBe(2);
    const client = await served.open(server);
    await client.reply();
    await client.command("EHLO client");
    expect(await client.command("AUTH SCRAM-SHA-256")).toMatch(/^454 4\.7\.0 /);
  });
});
