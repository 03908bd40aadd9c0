import { execFileSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { CramMd5Credentials } from "../src/mechanisms/cram-md5.js";
import { ExternalCredentials } from "../src/mechanisms/external.js";
import { OAuthCredentials } from "../src/mechanisms/oauth.js";
import { scramSha1, scramSha256 } from "../src/mechanisms/scram.js";
import { formatScramKey, scramStoredKey } from "../src/scram-keys.js";
import { simulateSasl } from "../src/simulate.js";
import { parseUsersFile, UsersFileError, usersFileLine } from "../src/users-file.js";
import { enc, ScramClient, unb64 } from "./helpers.js";

// A LoginPassword as the core's PLAIN/LOGIN produce it.
const pair = (login: string, password: string, authzid = "") => ({
  login: enc(login),
  password: enc(password),
  authzid,
});
const call = (db: ReturnType<typeof parseUsersFile>, mechanism: string, credentials: unknown) =>
  db.authenticator({} as never, {} as never, {} as never, mechanism, credentials) as Promise<{
    success: boolean;
    authData?: unknown;
  }>;

function hasGsasl(): boolean {
  try {
    execFileSync("gsasl", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("parseUsersFile", () => {
  test("plain, {PLAIN}, comments, blank lines, CRLF, colons in passwords", async () => {
    const db = parseUsersFile(
      "# users\r\nalice:wonderland\r\n\r\nbob:{PLAIN}{braces}\n  # indented comment\ncarol:a:b:c\n",
    );
    expect(db.size).toBe(3);
    expect(db.users).toEqual(["alice", "bob", "carol"]);
    expect(await db.verifyPassword("alice", "wonderland")).toBe(true);
    expect(await db.verifyPassword("alice", "Wonderland")).toBe(false);
    expect(await db.verifyPassword("bob", "{braces}")).toBe(true);
    expect(await db.verifyPassword("carol", "a:b:c")).toBe(true);
    expect(await db.verifyPassword("nobody", "x")).toBe(false);
    expect(db.hasPlainText).toBe(true);
  });

  test("SCRAM entries: ours and Dovecot/gsasl's form", async () => {
    const key = await scramStoredKey("pencil", { salt: unb64("W22ZaJ0SNY7soEsUEjb6gQ==") });
    const db = parseUsersFile(
      [
        `ours:${formatScramKey(key)}`,
        // gsasl --mkpasswd --mechanism SCRAM-SHA-256 --password pencil --salt W22ZaJ0SNY7soEsUEjb6gQ== --iteration-count 4096
        "theirs:{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      ].join("\n"),
    );
    expect(await db.verifyPassword("ours", "pencil")).toBe(true);
    expect(await db.verifyPassword("theirs", "pencil")).toBe(true);
    expect(await db.verifyPassword("theirs", "pen")).toBe(false);
    expect(db.hasPlainText).toBe(false);
  });

  test.skipIf(!hasGsasl() && process.env.CI !== "true")(
    `keys from \`gsasl --mkpasswd\` verify (SHA-1 and SHA-256)${hasGsasl() ? "" : " [skip: gsasl not installed]"}`,
    async () => {
      const lines = ["SCRAM-SHA-1", "SCRAM-SHA-256"].map(
        (mech, i) =>
          `u${i}:${execFileSync("gsasl", ["--mkpasswd", "--mechanism", mech, "--password", "s3cr3t", "--iteration-count", "4096"]).toString().trim()}`,
      );
      const db = parseUsersFile(lines.join("\n"));
      expect(await db.verifyPassword("u0", "s3cr3t")).toBe(true);
      expect(await db.verifyPassword("u1", "s3cr3t")).toBe(true);
      expect(await db.verifyPassword("u1", "nope")).toBe(false);
    },
  );

  test("bcrypt entries ($2b$ and {BLF-CRYPT})", async () => {
    const line = await usersFileLine("erin", "hunter2", { scheme: "bcrypt", iterations: 4 });
    expect(line).toMatch(/^erin:\$2b\$04\$/);
    const db = parseUsersFile(`${line}\nfrank:{BLF-CRYPT}${line.slice(5)}`);
    expect(await db.verifyPassword("erin", "hunter2")).toBe(true);
    expect(await db.verifyPassword("erin", "hunter3")).toBe(false);
    expect(await db.verifyPassword("frank", "hunter2")).toBe(true);
  });

  test("an empty password means no password (EXTERNAL only)", async () => {
    const db = parseUsersFile("frank:\n");
    expect(db.has("frank")).toBe(true);
    expect(await db.verifyPassword("frank", "")).toBe(false);
    expect((await call(db, "LOGIN", pair("frank", ""))).success).toBe(false);
  });

  test("user names are SASLprep-normalized", async () => {
    const db = parseUsersFile("I\u00adX:pw\n");
    expect(db.users).toEqual(["IX"]);
    expect(await db.verifyPassword("IX", "pw")).toBe(true);
    expect(await db.verifyPassword("\u2168", "pw")).toBe(true);
  });

  test.each([
    ["no colon", "alice\n", 1],
    ["empty user", ":pw\n", 1],
    ["duplicate", "a:x\nb:y\na:z\n", 3],
    ["unknown scheme", "a:{MD5}abc\n", 1],
    ["bad scram", "a:{SCRAM-SHA-256}nonsense\n", 1],
    ["scram key length", "a:{SCRAM-SHA-1}c2FsdA==$4096$YQ==$YQ==\n", 1],
    ["bad bcrypt", "a:{BLF-CRYPT}$2b$10$short\n", 1],
    ["control char in user", "a\u0001:pw\n", 1],
  ])("errors (%s) name the line, never its content", (_name, text, line) => {
    try {
      parseUsersFile(`# c\n${text}`);
      throw new Error("no error");
    } catch (error) {
      expect(error).toBeInstanceOf(UsersFileError);
      expect((error as UsersFileError).line).toBe(line + 1);
      const message = (error as Error).message;
      expect(message).toContain(`line ${line + 1}`);
      for (const secret of ["pw", "abc", "nonsense", "short", "x\n", "z"]) {
        if (secret.length > 2) expect(message).not.toContain(secret);
      }
      expect(message).not.toContain("c2FsdA");
    }
  });
});

describe("UserDatabase.authenticator", () => {
  const db = parseUsersFile("alice:wonderland\ntim:tanstaaftanstaaf\nfrank:\n");

  test("PLAIN/LOGIN credentials", async () => {
    const ok = await call(db, "PLAIN", pair("alice", "wonderland"));
    expect(ok.success).toBe(true);
    expect(ok.authData).toMatchObject({ mechanism: "PLAIN", login: "alice", authzid: "" });
    expect((await call(db, "PLAIN", pair("alice", "wrong"))).success).toBe(false);
    expect((await call(db, "LOGIN", pair("mallory", "wonderland"))).success).toBe(false);
  });

  test("PLAIN authzid must be the user itself", async () => {
    expect((await call(db, "PLAIN", pair("alice", "wonderland", "alice"))).success).toBe(true);
    expect((await call(db, "PLAIN", pair("alice", "wonderland", "tim"))).success).toBe(false);
  });

  test("CRAM-MD5: only plain-text entries", async () => {
    const challenge = "<1896.697170952@postoffice.reston.mci.net>";
    const c = new CramMd5Credentials("tim", challenge, "b913a602c7eda7a495b4e6e7334d3890");
    expect((await call(db, "CRAM-MD5", c)).success).toBe(true);
    const wrong = new CramMd5Credentials("alice", challenge, "b913a602c7eda7a495b4e6e7334d3890");
    expect((await call(db, "CRAM-MD5", wrong)).success).toBe(false);
    const scramOnly = parseUsersFile(
      `tim:${formatScramKey(await scramStoredKey("tanstaaftanstaaf"))}`,
    );
    expect(scramOnly.verifyCramMd5(c)).toBe(false);
  });

  test("OAuth tokens: refused unless tokensArePasswords", async () => {
    const c = new OAuthCredentials("XOAUTH2", "alice", "wonderland");
    expect((await call(db, "XOAUTH2", c)).success).toBe(false);
    const lenient = db.createAuthenticator({ tokensArePasswords: true });
    expect((await lenient({} as never, {} as never, {} as never, "XOAUTH2", c)).success).toBe(true);
    const bad = new OAuthCredentials("XOAUTH2", "alice", "nope");
    expect((await lenient({} as never, {} as never, {} as never, "XOAUTH2", bad)).success).toBe(
      false,
    );
  });

  test("EXTERNAL: a verified certificate of a listed user", async () => {
    expect(
      (await call(db, "EXTERNAL", new ExternalCredentials("frank", "", {}, true))).success,
    ).toBe(true);
    expect(
      (await call(db, "EXTERNAL", new ExternalCredentials("frank", "alice", {}, true))).success,
    ).toBe(false);
    expect((await call(db, "EXTERNAL", new ExternalCredentials("zed", "", {}, true))).success).toBe(
      false,
    );
    expect(
      (await call(db, "EXTERNAL", new ExternalCredentials("frank", "", {}, false))).success,
    ).toBe(false);
  });

  test("anything else fails", async () => {
    for (const weird of [
      null,
      undefined,
      42,
      "alice",
      {},
      { login: "alice", password: "wonderland" },
    ]) {
      expect((await call(db, "PLAIN", weird)).success).toBe(false);
    }
  });
});

describe("UserDatabase.scramLookup", () => {
  test("derives keys from plain text once and caches them", async () => {
    const db = parseUsersFile("alice:wonderland\n");
    const a = await db.scramLookup("alice", {
      mechanism: "SCRAM-SHA-256",
      hash: "SHA-256",
      authzid: "",
    });
    const b = await db.scramLookup("alice", {
      mechanism: "SCRAM-SHA-256",
      hash: "SHA-256",
      authzid: "",
    });
    expect(a).toBe(b);
    expect(a?.iterations).toBe(4096);
    expect(
      await db.scramLookup("bob", { mechanism: "SCRAM-SHA-256", hash: "SHA-256", authzid: "" }),
    ).toBeNull();
  });

  test("full SCRAM exchanges against the database (SHA-1 and SHA-256)", async () => {
    const stored = await scramStoredKey("s3cret", { hash: "SHA-256" });
    const db = parseUsersFile(
      `alice:wonderland\ncarol:${formatScramKey(stored)}\nerin:$2b$04$abcdefghijklmnopqrstuu5Jq3kq4dIGjv9V5cAXoPQqKLqRN3Pz2`,
    );
    const cases: [string, "SHA-1" | "SHA-256", string, string, boolean][] = [
      ["alice", "SHA-256", "wonderland", "SCRAM-SHA-256", true],
      ["alice", "SHA-1", "wonderland", "SCRAM-SHA-1", true],
      ["alice", "SHA-256", "wrong", "SCRAM-SHA-256", false],
      ["carol", "SHA-256", "s3cret", "SCRAM-SHA-256", true],
      ["carol", "SHA-1", "s3cret", "SCRAM-SHA-1", false], // only SHA-256 keys stored
      ["erin", "SHA-256", "whatever", "SCRAM-SHA-256", false], // bcrypt: no SCRAM
    ];
    for (const [user, hash, password, , expected] of cases) {
      const mechanism = (hash === "SHA-1" ? scramSha1 : scramSha256)({ lookup: db.scramLookup });
      const client = new ScramClient(hash, user, password);
      let round = 0;
      const outcome = await simulateSasl(mechanism, {
        initialResponse: client.first(),
        client: (c) => (round++ === 0 ? client.final(c) : new Uint8Array(0)),
      });
      expect([user, hash, outcome.result?.success]).toEqual([user, hash, expected]);
    }
  });
});

describe("usersFileLine", () => {
  test("SCRAM-SHA-256 by default; the line parses and verifies", async () => {
    const line = await usersFileLine("alice", "wonderland");
    expect(line).toMatch(
      /^alice:\{SCRAM-SHA-256\}[A-Za-z0-9+/=]+\$4096\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/,
    );
    expect(line).not.toContain("wonderland");
    expect(await parseUsersFile(line).verifyPassword("alice", "wonderland")).toBe(true);
  });

  test("SCRAM-SHA-1 and plain", async () => {
    const sha1 = await usersFileLine("bob", "pw", { scheme: "scram-sha-1", iterations: 5000 });
    expect(sha1).toMatch(/^bob:\{SCRAM-SHA-1\}.*\$5000\$/);
    expect(await parseUsersFile(sha1).verifyPassword("bob", "pw")).toBe(true);
    expect(await usersFileLine("c", "{x}", { scheme: "plain" })).toBe("c:{PLAIN}{x}");
    expect(await usersFileLine("c", "x", { scheme: "plain" })).toBe("c:x");
    expect(
      await parseUsersFile(await usersFileLine("c", "{x}", { scheme: "plain" })).verifyPassword(
        "c",
        "{x}",
      ),
    ).toBe(true);
  });

  test("refuses names with ':' and passwords with line breaks", async () => {
    await expect(usersFileLine("a:b", "x")).rejects.toThrow(TypeError);
    await expect(usersFileLine("a", "x\ny")).rejects.toThrow(TypeError);
  });
});
