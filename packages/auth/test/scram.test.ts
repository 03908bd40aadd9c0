import { describe, expect, test } from "vitest";
import {
  decodeSaslName,
  encodeSaslName,
  type scram,
  scramMechanisms,
  scramSha1,
  scramSha256,
  scramSha256Plus,
} from "../src/mechanisms/scram.js";
import { scramStoredKey } from "../src/scram-keys.js";
import { simulateSasl } from "../src/simulate.js";
import { AuthIdentity } from "../src/types.js";
import { CLEAR, dec, enc, ScramClient, tlsContext, unb64 } from "./helpers.js";

const rfc5802Key = () =>
  scramStoredKey("pencil", { hash: "SHA-1", salt: unb64("QSXCR+Q6sek8bf92"), iterations: 4096 });
const rfc7677Key = () =>
  scramStoredKey("pencil", {
    hash: "SHA-256",
    salt: unb64("W22ZaJ0SNY7soEsUEjb6gQ=="),
    iterations: 4096,
  });

/** Runs a full exchange with the test client; returns the outcome and the last challenge. */
async function run(mechanism: ReturnType<typeof scram>, client: ScramClient, context = CLEAR) {
  let serverFinal: Uint8Array | null = null;
  let round = 0;
  const outcome = await simulateSasl(mechanism, {
    context,
    initialResponse: client.first(),
    client: (challenge) => {
      round++;
      if (round === 1) return client.final(challenge);
      serverFinal = challenge;
      return new Uint8Array(0);
    },
  });
  return { outcome, serverFinal: serverFinal as Uint8Array | null };
}

describe("SCRAM test vectors", () => {
  test("RFC 5802 §5 SCRAM-SHA-1 example (user / pencil)", async () => {
    const key = await rfc5802Key();
    const mechanism = scramSha1({
      lookup: (user) => (user === "user" ? key : null),
      nonce: () => "3rfcNHYJY1ZVvWVs7j",
    });
    const messages = [
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
      "",
    ];
    const outcome = await simulateSasl(mechanism, {
      initialResponse: enc("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
      client: () => enc(messages.shift() as string),
    });
    expect(outcome.challenges.map(dec)).toEqual([
      "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
      "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    ]);
    expect(outcome.result?.success).toBe(true);
    expect(outcome.result?.authData).toBeInstanceOf(AuthIdentity);
    expect(outcome.result?.authData).toMatchObject({ mechanism: "SCRAM-SHA-1", login: "user" });
  });

  test("RFC 7677 §3 SCRAM-SHA-256 example (user / pencil)", async () => {
    const key = await rfc7677Key();
    const mechanism = scramSha256({
      lookup: (user) => (user === "user" ? key : null),
      nonce: () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    });
    const messages = [
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "",
    ];
    const outcome = await simulateSasl(mechanism, {
      client: () => enc(messages.shift() as string),
      initialResponse: enc("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
    });
    expect(outcome.challenges.map(dec)).toEqual([
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    ]);
    expect(outcome.result?.success).toBe(true);
  });

  test("without an initial response the server sends an empty challenge first", async () => {
    const key = await rfc7677Key();
    const client = new ScramClient("SHA-256", "user", "pencil");
    const steps: ((c: Uint8Array) => Uint8Array)[] = [
      () => client.first(),
      (c) => client.final(c),
      () => new Uint8Array(0),
    ];
    const outcome = await simulateSasl(scramSha256({ lookup: () => key }), {
      client: (c) => (steps.shift() as (c: Uint8Array) => Uint8Array)(c),
    });
    expect(outcome.challenges[0]).toEqual(new Uint8Array(0));
    expect(outcome.result?.success).toBe(true);
  });
});

describe("SCRAM server behaviour", () => {
  test("round trip with our client; server signature verifies", async () => {
    const key = await scramStoredKey("s3cret", { hash: "SHA-256" });
    const client = new ScramClient("SHA-256", "alice", "s3cret");
    const { outcome, serverFinal } = await run(scramSha256({ lookup: () => key }), client);
    expect(outcome.result?.success).toBe(true);
    expect(client.verifyServer(serverFinal as Uint8Array)).toBe(true);
  });

  test("wrong password: e=invalid-proof, then failure", async () => {
    const key = await scramStoredKey("s3cret", { hash: "SHA-1" });
    const client = new ScramClient("SHA-1", "alice", "wrong");
    const { outcome, serverFinal } = await run(scramSha1({ lookup: () => key }), client);
    expect(dec(serverFinal as Uint8Array)).toBe("e=invalid-proof");
    expect(outcome.result).toEqual({ success: false });
  });

  test("sendServerError: false ends with 535 carrying the error instead of an e= challenge", async () => {
    const key = await scramStoredKey("s3cret");
    const { outcome, serverFinal } = await run(
      scramSha256({ lookup: () => key, sendServerError: false }),
      new ScramClient("SHA-256", "alice", "wrong"),
    );
    expect(serverFinal).toBeNull();
    expect(outcome.result).toEqual({
      success: false,
      message: "535 5.7.8 Authentication failed (invalid-proof)",
    });
  });

  test("unknown user looks like a wrong password, with a stable salt", async () => {
    const mechanism = scramSha256({ lookup: () => null });
    const salts: string[] = [];
    for (let i = 0; i < 2; i++) {
      const client = new ScramClient("SHA-256", "nobody", "x");
      const exchange = mechanism.start(CLEAR);
      const step = await exchange.step(client.first());
      if (step.type !== "challenge") throw new Error("expected server-first");
      salts.push(/s=([^,]+)/.exec(dec(step.challenge))?.[1] as string);
      const final = await exchange.step(client.final(step.challenge));
      expect(final.type === "challenge" && dec(final.challenge)).toBe("e=invalid-proof");
    }
    expect(salts[0]).toBe(salts[1]);
  });

  test("tampered nonce: e=invalid-proof", async () => {
    const key = await scramStoredKey("pw");
    const { serverFinal, outcome } = await run(
      scramSha256({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw", { tamperNonce: true }),
    );
    expect(dec(serverFinal as Uint8Array)).toBe("e=invalid-proof");
    expect(outcome.result?.success).toBe(false);
  });

  test("tampered proof: e=invalid-proof", async () => {
    const key = await scramStoredKey("pw");
    const { serverFinal } = await run(
      scramSha256({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw", { tamperProof: true }),
    );
    expect(dec(serverFinal as Uint8Array)).toBe("e=invalid-proof");
  });

  test("user names with , and = are escaped (=2C, =3D) and SASLprep'd", async () => {
    const key = await scramStoredKey("pw");
    const seen: string[] = [];
    const lookup = (user: string) => {
      seen.push(user);
      return key;
    };
    const { outcome } = await run(
      scramSha256({ lookup }),
      new ScramClient("SHA-256", "a,b=c", "pw"),
    );
    expect(outcome.result?.success).toBe(true);
    // U+00AD (soft hyphen) is mapped to nothing, U+2168 (ROMAN NUMERAL NINE) to "IX" by NFKC.
    await run(scramSha256({ lookup }), new ScramClient("SHA-256", "I\u00adX\u2168", "pw"));
    expect(seen).toEqual(["a,b=c", "IXIX"]);
  });

  test("bad =XX escape in the user name: e=invalid-username-encoding", async () => {
    const key = await scramStoredKey("pw");
    const mechanism = scramSha256({ lookup: () => key });
    const exchange = mechanism.start(CLEAR);
    const first = await exchange.step(enc("n,,n=bad=41name,r=abcdef"));
    expect(first.type).toBe("challenge");
    const final = await exchange.step(
      enc(
        `c=biws,r=${/r=([^,]+)/.exec(dec((first as { challenge: Uint8Array }).challenge))?.[1]},p=AAAA`,
      ),
    );
    expect(final.type === "challenge" && dec(final.challenge)).toBe("e=invalid-username-encoding");
  });

  test("authzid equal to the user is fine; a different one needs authorize()", async () => {
    const key = await scramStoredKey("pw");
    const ok = await run(
      scramSha256({ lookup: () => key }),
      new ScramClient("SHA-256", "alice", "pw", { gs2: "n,a=alice," }),
    );
    expect(ok.outcome.result?.success).toBe(true);
    const refused = await run(
      scramSha256({ lookup: () => key }),
      new ScramClient("SHA-256", "alice", "pw", { gs2: "n,a=bob," }),
    );
    expect(dec(refused.serverFinal as Uint8Array)).toBe("e=other-error");
    const allowed = await run(
      scramSha256({
        lookup: () => key,
        authorize: (login, authzid) => login === "alice" && authzid === "bob",
      }),
      new ScramClient("SHA-256", "alice", "pw", { gs2: "n,a=bob," }),
    );
    expect(allowed.outcome.result?.success).toBe(true);
    expect(allowed.outcome.result?.authData).toMatchObject({ login: "alice", authzid: "bob" });
  });

  test("m= extension: e=extensions-not-supported", async () => {
    const key = await scramStoredKey("pw");
    const exchange = scramSha256({ lookup: () => key }).start(CLEAR);
    const first = await exchange.step(enc("n,,m=ext,n=user,r=abcdef"));
    if (first.type !== "challenge") throw new Error("expected challenge");
    const nonce = /r=([^,]+)/.exec(dec(first.challenge))?.[1];
    const final = await exchange.step(enc(`c=biws,r=${nonce},p=AAAA`));
    expect(final.type === "challenge" && dec(final.challenge)).toBe("e=extensions-not-supported");
    // The e= challenge is already the refusal, naming the user the client claimed.
    expect(final).toMatchObject({ verdict: "failure", login: "user" });
    expect(await exchange.step(new Uint8Array(0))).toEqual({ type: "failure", login: "user" });
  });

  test("non-PLUS with p=: e=channel-binding-not-supported", async () => {
    const key = await scramStoredKey("pw");
    const { serverFinal } = await run(
      scramSha256({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw", { gs2: "p=tls-exporter,," }),
      tlsContext(),
    );
    expect(dec(serverFinal as Uint8Array)).toBe("e=channel-binding-not-supported");
  });

  test("y flag: fine when no -PLUS is offered, a downgrade when it is", async () => {
    const key = await scramStoredKey("pw");
    const plain = await run(
      scramSha256({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw", { gs2: "y,," }),
      tlsContext(),
    );
    expect(plain.outcome.result?.success).toBe(true);
    const downgraded = await run(
      scramSha256({ lookup: () => key, plusOffered: true }),
      new ScramClient("SHA-256", "u", "pw", { gs2: "y,," }),
      tlsContext(),
    );
    expect(dec(downgraded.serverFinal as Uint8Array)).toBe("e=server-does-support-channel-binding");
    // In clear there is nothing to bind to: y is honest.
    const clear = await run(
      scramSha256({ lookup: () => key, plusOffered: true }),
      new ScramClient("SHA-256", "u", "pw", { gs2: "y,," }),
    );
    expect(clear.outcome.result?.success).toBe(true);
  });

  test("a lookup that throws gives a temporary failure, not an exception", async () => {
    const exchange = scramSha256({
      lookup: () => {
        throw new Error("database down: password=hunter2");
      },
    }).start(CLEAR);
    const step = await exchange.step(enc("n,,n=user,r=abcdef"));
    expect(step).toEqual({ type: "failure", reply: "454 4.7.0 Temporary authentication failure" });
  });

  test("a lookup returning keys of the wrong length gives a temporary failure", async () => {
    const key = await scramStoredKey("pw", { hash: "SHA-1" });
    const exchange = scramSha256({ lookup: () => key }).start(CLEAR);
    const step = await exchange.step(enc("n,,n=user,r=abcdef"));
    expect(step.type).toBe("failure");
  });

  test.each([
    ["no gs2 header", "n=user,r=abc"],
    ["bad flag", "x,,n=user,r=abc"],
    ["no nonce", "n,,n=user"],
    ["nonce with comma-free junk", "n,,n=user,r="],
    ["bad authzid", "n,b=x,n=user,r=abc"],
    ["attribute order", "n,,r=abc,n=user"],
  ])("malformed client-first (%s) fails with 501", async (_name, message) => {
    const step = await scramSha256({ lookup: () => null })
      .start(CLEAR)
      .step(enc(message));
    expect(step.type).toBe("failure");
    expect((step as { reply?: string }).reply).toMatch(/^501 /);
  });

  test("malformed client-final fails with 501", async () => {
    const exchange = scramSha256({ lookup: () => null }).start(CLEAR);
    await exchange.step(enc("n,,n=user,r=abc"));
    const step = await exchange.step(enc("garbage"));
    expect(step.type).toBe("failure");
  });

  test("a non-empty answer to the server-final message fails", async () => {
    const key = await scramStoredKey("pw");
    const client = new ScramClient("SHA-256", "u", "pw");
    const exchange = scramSha256({ lookup: () => key }).start(CLEAR);
    const first = await exchange.step(client.first());
    const final = await exchange.step(client.final((first as { challenge: Uint8Array }).challenge));
    expect(final.type).toBe("challenge");
    expect((await exchange.step(enc("extra"))).type).toBe("failure");
  });
});

describe("SCRAM -PLUS (channel binding)", () => {
  test("tls-exporter binding succeeds with the right data", async () => {
    const key = await scramStoredKey("pw");
    const material = new Uint8Array(32).fill(9);
    const context = tlsContext({ exportKeyingMaterial: () => material });
    const { outcome } = await run(
      scramSha256Plus({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw", { gs2: "p=tls-exporter,,", cbData: material }),
      context,
    );
    expect(outcome.result?.success).toBe(true);
  });

  test("tls-exporter binding mismatch: e=channel-bindings-dont-match", async () => {
    const key = await scramStoredKey("pw");
    const context = tlsContext({ exportKeyingMaterial: () => new Uint8Array(32).fill(9) });
    const { serverFinal } = await run(
      scramSha256Plus({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw", {
        gs2: "p=tls-exporter,,",
        cbData: new Uint8Array(32).fill(1),
      }),
      context,
    );
    expect(dec(serverFinal as Uint8Array)).toBe("e=channel-bindings-dont-match");
  });

  test("unknown binding type: e=unsupported-channel-binding-type", async () => {
    const key = await scramStoredKey("pw");
    const { serverFinal } = await run(
      scramSha256Plus({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw", { gs2: "p=tls-unique,," }),
      tlsContext(),
    );
    expect(dec(serverFinal as Uint8Array)).toBe("e=unsupported-channel-binding-type");
  });

  test("PLUS without p=: fails", async () => {
    const key = await scramStoredKey("pw");
    const { serverFinal } = await run(
      scramSha256Plus({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw"),
      tlsContext(),
    );
    expect(dec(serverFinal as Uint8Array)).toBe("e=channel-bindings-dont-match");
  });

  test("PLUS in clear: e=channel-binding-not-supported", async () => {
    const key = await scramStoredKey("pw");
    const { serverFinal } = await run(
      scramSha256Plus({ lookup: () => key }),
      new ScramClient("SHA-256", "u", "pw", { gs2: "p=tls-exporter,," }),
    );
    expect(dec(serverFinal as Uint8Array)).toBe("e=channel-binding-not-supported");
  });

  test("tls-exporter is not offered under TLS 1.2", () => {
    const mechanism = scramSha256Plus({ lookup: () => null, channelBindings: ["tls-exporter"] });
    const tls12 = tlsContext();
    (tls12.tls as unknown as { protocol: string }).protocol = "TLSv1.2";
    expect(mechanism.available?.(tls12)).toBe(false);
    const tls13 = tlsContext();
    (tls13.tls as unknown as { protocol: string }).protocol = "TLSv1.3";
    expect(mechanism.available?.(tls13)).toBe(true);
    expect(mechanism.available?.(CLEAR)).toBe(false);
  });

  test("names, safeWithoutTls and scramMechanisms()", () => {
    const all = scramMechanisms({ lookup: () => null });
    expect(all.map((m) => m.name)).toEqual([
      "SCRAM-SHA-256",
      "SCRAM-SHA-256-PLUS",
      "SCRAM-SHA-1",
      "SCRAM-SHA-1-PLUS",
    ]);
    expect(all.map((m) => m.safeWithoutTls)).toEqual([true, false, true, false]);
    expect(
      scramMechanisms({ lookup: () => null, plus: false, hashes: ["SHA-1"] }).map((m) => m.name),
    ).toEqual(["SCRAM-SHA-1"]);
  });
});

describe("saslname", () => {
  test("decode and encode", () => {
    expect(decodeSaslName("a=2Cb=3Dc")).toBe("a,b=c");
    expect(decodeSaslName("a=2")).toBeNull();
    expect(decodeSaslName("a=41")).toBeNull();
    expect(decodeSaslName("a,b")).toBeNull();
    expect(encodeSaslName("a,b=c")).toBe("a=2Cb=3Dc");
  });
});
