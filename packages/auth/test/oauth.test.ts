import { describe, expect, test } from "vitest";
import type { OAuthCredentials } from "../src/mechanisms/oauth.js";
import { oauthBearer, parseOAuthBearer } from "../src/mechanisms/oauthbearer.js";
import { parseXOAuth2, xoauth2 } from "../src/mechanisms/xoauth2.js";
import { simulateSasl } from "../src/simulate.js";
import { CLEAR, dec, enc, unb64 } from "./helpers.js";

// RFC 7628 §4.1 (IMAP) and §4.2 (SMTP) client responses, base64 as printed in the RFC.
const RFC7628_IMAP =
  "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
const RFC7628_SMTP =
  "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
// RFC 7628 §4.3: the server's error challenge, and the client's %x01.
const RFC7628_ERROR =
  "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=";
const TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";

describe("OAUTHBEARER (RFC 7628)", () => {
  test("§4.1 example parses: authzid, host, port, token", () => {
    const credentials = parseOAuthBearer(unb64(RFC7628_IMAP)) as OAuthCredentials;
    expect(credentials.login).toBe("user@example.com");
    expect(credentials.authzid).toBe("user@example.com");
    expect(credentials.host).toBe("server.example.com");
    expect(credentials.port).toBe(143);
    expect(credentials.token).toBe(TOKEN);
  });

  test("§4.2 SMTP example succeeds through the authenticator", async () => {
    const outcome = await simulateSasl(oauthBearer(), {
      initialResponse: unb64(RFC7628_SMTP),
      client: () => null,
      authenticator: (_m, c) => ({
        success: (c as OAuthCredentials).token === TOKEN,
        authData: "user@example.com",
      }),
    });
    expect(outcome.result).toEqual({ success: true, authData: "user@example.com" });
    expect(outcome.challenges).toEqual([]);
    expect((outcome.credentials as OAuthCredentials).port).toBe(587);
  });

  test("§4.3 failure: the JSON error challenge, the client's %x01, then failure", async () => {
    const answers: Uint8Array[] = [];
    const outcome = await simulateSasl(
      oauthBearer({
        scope: "example_scope",
        openidConfiguration: "https://example.com/.well-known/openid-configuration",
      }),
      {
        initialResponse: unb64(RFC7628_SMTP),
        client: (challenge) => {
          answers.push(challenge);
          return unb64("AQ==");
        },
        authenticator: () => ({ success: false }),
      },
    );
    expect(Buffer.from(outcome.challenges[0] as Uint8Array).toString("base64")).toBe(RFC7628_ERROR);
    expect(outcome.result).toEqual({ success: false });
  });

  test("verify option: the mechanism checks the token itself", async () => {
    const mechanism = oauthBearer({ verify: (c) => c.token === TOKEN });
    const ok = await simulateSasl(mechanism, {
      initialResponse: unb64(RFC7628_SMTP),
      client: () => null,
    });
    expect(ok.result?.success).toBe(true);
    expect(ok.result?.authData).toMatchObject({
      mechanism: "OAUTHBEARER",
      login: "user@example.com",
    });
    const bad = await simulateSasl(oauthBearer({ verify: () => false }), {
      initialResponse: unb64(RFC7628_SMTP),
      client: () => enc("\x01"),
    });
    expect(JSON.parse(dec(bad.challenges[0] as Uint8Array))).toEqual({ status: "invalid_token" });
    expect(bad.result?.success).toBe(false);
  });

  test("without an initial response: empty challenge first", async () => {
    const outcome = await simulateSasl(oauthBearer(), {
      client: () => unb64(RFC7628_SMTP),
      authenticator: () => ({ success: true }),
    });
    expect(outcome.challenges).toEqual([new Uint8Array(0)]);
    expect(outcome.result?.success).toBe(true);
  });

  test("a verifier that throws gives a temporary failure without the JSON", async () => {
    const outcome = await simulateSasl(
      oauthBearer({
        verify: () => {
          throw new Error("introspection endpoint down");
        },
      }),
      { initialResponse: unb64(RFC7628_SMTP), client: () => enc("\x01") },
    );
    expect(outcome.challenges).toEqual([]);
    expect(outcome.result?.message).toMatch(/^454 /);
  });

  test.each([
    ["channel binding p=", "p=tls-unique,,\x01auth=Bearer abc\x01\x01"],
    ["no kvsep", "n,,auth=Bearer abc\x01\x01"],
    ["no final kvsep", "n,,\x01auth=Bearer abc\x01"],
    ["no auth", "n,,\x01host=x\x01\x01"],
    ["not Bearer", "n,,\x01auth=Basic abc\x01\x01"],
    ["bad token chars", "n,,\x01auth=Bearer a\u00e9b\x01\x01"],
    ["duplicate key", "n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01"],
    ["bad authzid escape", "n,a=x=41,\x01auth=Bearer abc\x01\x01"],
    ["empty", ""],
  ])("malformed (%s) fails with 501, no authenticator call", async (_n, message) => {
    let called = false;
    const outcome = await simulateSasl(oauthBearer(), {
      initialResponse: enc(message),
      client: () => null,
      authenticator: () => {
        called = true;
        return { success: true };
      },
    });
    expect(outcome.result?.message).toMatch(/^501 /);
    expect(called).toBe(false);
  });

  test("gs2 without authzid gives an empty login", () => {
    const c = parseOAuthBearer(enc("n,,\x01auth=Bearer abc\x01\x01")) as OAuthCredentials;
    expect(c.login).toBe("");
    expect(c.token).toBe("abc");
  });
});

describe("XOAUTH2", () => {
  const message =
    "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01";

  test("Google's format parses", () => {
    const c = parseXOAuth2(enc(message)) as OAuthCredentials;
    expect(c.mechanism).toBe("XOAUTH2");
    expect(c.login).toBe("someuser@example.com");
    expect(c.token).toBe("ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg");
  });

  test("success with the initial response", async () => {
    const outcome = await simulateSasl(xoauth2(), {
      initialResponse: enc(message),
      client: () => null,
      authenticator: (_m, c) => ({
        success: (c as OAuthCredentials).login === "someuser@example.com",
      }),
    });
    expect(outcome.result?.success).toBe(true);
    expect(outcome.challenges).toEqual([]);
  });

  test("failure: JSON error challenge, empty client answer, then failure", async () => {
    const answers: string[] = [];
    const outcome = await simulateSasl(xoauth2({ scope: "https://mail.google.com/" }), {
      initialResponse: enc(message),
      client: (c) => {
        answers.push(dec(c));
        return new Uint8Array(0);
      },
      authenticator: () => ({
        success: false,
        message: "535 5.7.8 Username and Password not accepted",
      }),
    });
    expect(JSON.parse(answers[0] as string)).toEqual({
      status: "401",
      schemes: "bearer",
      scope: "https://mail.google.com/",
    });
    expect(outcome.result).toEqual({
      success: false,
      message: "535 5.7.8 Username and Password not accepted",
    });
  });

  test("without an initial response: empty challenge first", async () => {
    const outcome = await simulateSasl(xoauth2({ verify: () => true }), {
      client: () => enc(message),
    });
    expect(outcome.challenges).toEqual([new Uint8Array(0)]);
    expect(outcome.result?.success).toBe(true);
  });

  test.each([
    ["no terminator", "user=a\x01auth=Bearer t"],
    ["no user", "auth=Bearer t\x01\x01"],
    ["no auth", "user=a\x01\x01"],
    ["no key", "user=a\x01=x\x01auth=Bearer t\x01\x01"],
    ["bad scheme", "user=a\x01auth=Basic t\x01\x01"],
  ])("malformed (%s) fails with 501", async (_n, text) => {
    const outcome = await simulateSasl(xoauth2(), {
      initialResponse: enc(text),
      client: () => null,
      authenticator: () => ({ success: true }),
    });
    expect(outcome.result?.message).toMatch(/^501 /);
  });

  test("not safe without TLS (tokens travel in clear)", () => {
    expect(xoauth2().safeWithoutTls).toBeFalsy();
    expect(oauthBearer().safeWithoutTls).toBeFalsy();
  });

  test("without the verdict hook (older core) the first step is plain credentials", async () => {
    const step = await xoauth2().start(CLEAR).step(enc(message));
    expect(step.type).toBe("credentials");
  });
});
