import { describe, expect, test } from "vitest";
import { CramMd5Credentials, cramMd5 } from "../src/mechanisms/cram-md5.js";
import { simulateSasl } from "../src/simulate.js";
import { CLEAR, dec, enc } from "./helpers.js";

const RFC_CHALLENGE = "<1896.697170952@postoffice.reston.mci.net>";

describe("CRAM-MD5", () => {
  test("RFC 2195 example: tim / tanstaaftanstaaf", async () => {
    const mechanism = cramMd5({ challenge: () => RFC_CHALLENGE });
    const outcome = await simulateSasl(mechanism, {
      client: () => enc("tim b913a602c7eda7a495b4e6e7334d3890"),
      authenticator: (_m, credentials) => ({
        success: (credentials as CramMd5Credentials).verify("tanstaaftanstaaf"),
      }),
    });
    expect(outcome.challenges.map(dec)).toEqual([RFC_CHALLENGE]);
    expect(outcome.result?.success).toBe(true);
    const credentials = outcome.credentials as CramMd5Credentials;
    expect(credentials.login).toBe("tim");
    expect(credentials.challenge).toBe(RFC_CHALLENGE);
    expect(credentials.digest).toBe("b913a602c7eda7a495b4e6e7334d3890");
    expect(credentials.verify(enc("tanstaaftanstaaf"))).toBe(true);
    expect(credentials.verify("wrong")).toBe(false);
  });

  test("upper-case hex digests verify too", () => {
    const credentials = new CramMd5Credentials(
      "tim",
      RFC_CHALLENGE,
      "B913A602C7EDA7A495B4E6E7334D3890",
    );
    expect(credentials.verify("tanstaaftanstaaf")).toBe(true);
  });

  test("wrong password fails through the authenticator", async () => {
    const outcome = await simulateSasl(cramMd5({ challenge: () => RFC_CHALLENGE }), {
      client: () => enc("tim 00000000000000000000000000000000"),
      authenticator: (_m, c) => ({ success: (c as CramMd5Credentials).verify("tanstaaftanstaaf") }),
    });
    expect(outcome.result).toEqual({ success: false });
  });

  test("challenges are unique and shaped <random.timestamp@hostname>", () => {
    const mechanism = cramMd5();
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const step = mechanism.start(CLEAR).step(null);
      if (step instanceof Promise || step.type !== "challenge")
        throw new Error("expected challenge");
      const text = dec(step.challenge);
      expect(text).toMatch(/^<\d+\.\d+@mx\.example\.com>$/);
      seen.add(text);
    }
    expect(seen.size).toBe(50);
  });

  test("user names may contain spaces (split at the last one)", async () => {
    const outcome = await simulateSasl(cramMd5({ challenge: () => RFC_CHALLENGE }), {
      client: () => enc("tim smith b913a602c7eda7a495b4e6e7334d3890"),
      authenticator: () => ({ success: true }),
    });
    expect((outcome.credentials as CramMd5Credentials).login).toBe("tim smith");
  });

  test.each([
    ["no digest", "tim"],
    ["short digest", "tim abc"],
    ["non-hex digest", "tim zz13a602c7eda7a495b4e6e7334d3890"],
    ["empty", ""],
    ["no user", " b913a602c7eda7a495b4e6e7334d3890"],
  ])("malformed response (%s) fails with 501", async (_name, response) => {
    const outcome = await simulateSasl(cramMd5(), {
      client: () => enc(response),
      authenticator: () => ({ success: true }),
    });
    expect(outcome.result?.success).toBe(false);
    expect(outcome.result?.message).toMatch(/^501 /);
    expect(outcome.credentials).toBeUndefined();
  });

  test("invalid UTF-8 fails", async () => {
    const outcome = await simulateSasl(cramMd5(), {
      client: () => new Uint8Array([0xff, 0x20, ...enc("b913a602c7eda7a495b4e6e7334d3890")]),
      authenticator: () => ({ success: true }),
    });
    expect(outcome.result?.success).toBe(false);
  });

  test("an initial response is refused", async () => {
    const outcome = await simulateSasl(cramMd5(), {
      initialResponse: enc("tim b913a602c7eda7a495b4e6e7334d3890"),
      client: () => null,
    });
    expect(outcome.result?.message).toMatch(/^501 /);
  });

  test("is safe without TLS", () => {
    expect(cramMd5().safeWithoutTls).toBe(true);
    expect(cramMd5().name).toBe("CRAM-MD5");
  });
});
