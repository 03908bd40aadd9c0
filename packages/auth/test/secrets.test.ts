import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { CramMd5Credentials } from "../src/mechanisms/cram-md5.js";
import { ExternalCredentials } from "../src/mechanisms/external.js";
import { OAuthCredentials } from "../src/mechanisms/oauth.js";
import { oauthBearer } from "../src/mechanisms/oauthbearer.js";
import { scramSha256 } from "../src/mechanisms/scram.js";
import { xoauth2 } from "../src/mechanisms/xoauth2.js";
import { scramStoredKey } from "../src/scram-keys.js";
import { simulateSasl } from "../src/simulate.js";
import { AuthIdentity } from "../src/types.js";
import { parseUsersFile, UsersFileError } from "../src/users-file.js";
import { enc } from "./helpers.js";

const SECRET = "hunter2-SECRET";
const DIGEST = "b913a602c7eda7a495b4e6e7334d3890";

/** Every way a program might print an object. */
function renderings(value: unknown): string[] {
  return [
    String(value),
    `${value}`,
    JSON.stringify(value),
    JSON.stringify({ nested: value }),
    inspect(value),
    inspect({ nested: [value] }, { depth: 5 }),
    JSON.stringify({ ...(value as object) }),
    inspect({ ...(value as object) }),
    value instanceof Error ? `${value.message} ${value.stack}` : "",
  ];
}

function expectHidden(value: unknown, ...secrets: string[]): void {
  for (const text of renderings(value)) {
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
}

describe("credentials never show up in strings, JSON or inspect()", () => {
  test("CramMd5Credentials hides the digest", () => {
    const c = new CramMd5Credentials("tim", "<1.2@h>", DIGEST);
    expectHidden(c, DIGEST);
    expect(String(c)).toContain("tim");
    expect(c.digest).toBe(DIGEST);
  });

  test("OAuthCredentials hides the token", () => {
    const c = new OAuthCredentials("XOAUTH2", "alice", SECRET);
    expectHidden(c, SECRET);
    expect(c.token).toBe(SECRET);
    expect(Object.keys(c)).not.toContain("token");
  });

  test("ScramKeys hides the keys", async () => {
    const key = await scramStoredKey(SECRET);
    const storedB64 = Buffer.from(key.storedKey).toString("base64");
    const serverB64 = Buffer.from(key.serverKey).toString("base64");
    expectHidden(
      key,
      SECRET,
      storedB64,
      serverB64,
      `${String(key.storedKey[0])},${String(key.storedKey[1])}`,
    );
  });

  test("UserDatabase shows only a count", () => {
    const db = parseUsersFile(`alice:${SECRET}\n`);
    expectHidden(db, SECRET, "alice");
    expect(String(db)).toBe("UserDatabase(1 users)");
  });

  test("UsersFileError never quotes the line", () => {
    for (const text of [
      `alice${SECRET}\n`,
      `alice:{X}${SECRET}\n`,
      `alice:{SCRAM-SHA-256}${SECRET}\n`,
    ]) {
      try {
        parseUsersFile(text);
        throw new Error("expected an error");
      } catch (error) {
        expect(error).toBeInstanceOf(UsersFileError);
        expectHidden(error, SECRET);
      }
    }
  });

  test("AuthIdentity and ExternalCredentials carry no secret and print compactly", () => {
    expect(String(new AuthIdentity("PLAIN", "alice"))).toBe(
      "AuthIdentity(mechanism=PLAIN, login=alice)",
    );
    const cert = { subject: { CN: "alice" }, raw: Buffer.from(SECRET) };
    expectHidden(new ExternalCredentials("alice", "", cert, true), SECRET);
  });

  test("failure replies never echo what the client sent", async () => {
    for (const mechanism of [xoauth2(), oauthBearer(), scramSha256({ lookup: () => null })]) {
      const outcome = await simulateSasl(mechanism, {
        initialResponse: enc(`user=${SECRET}\x01auth=Bearer ${SECRET}`),
        client: () => enc(SECRET),
        authenticator: () => ({ success: false }),
      });
      expect(JSON.stringify(outcome.result)).not.toContain(SECRET);
      for (const challenge of outcome.challenges) {
        expect(Buffer.from(challenge).toString()).not.toContain(SECRET);
      }
    }
  });

  test("a lookup error's message does not reach the reply", async () => {
    const outcome = await simulateSasl(
      scramSha256({
        lookup: () => {
          throw new Error(`db password ${SECRET}`);
        },
      }),
      { initialResponse: enc("n,,n=u,r=abc"), client: () => null },
    );
    expect(JSON.stringify(outcome.result)).not.toContain(SECRET);
  });
});
