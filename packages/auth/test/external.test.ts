import { describe, expect, test } from "vitest";
import {
  certificateCommonName,
  ExternalCredentials,
  external,
} from "../src/mechanisms/external.js";
import { simulateSasl } from "../src/simulate.js";
import { CLEAR, enc, tlsContext } from "./helpers.js";

const cert = { subject: { CN: "alice", O: "Example" }, fingerprint256: "AB:CD" };
const verified = tlsContext({ peerCertificate: cert, authorized: true });

describe("EXTERNAL", () => {
  test("verified certificate: credentials for the authenticator (AUTH EXTERNAL =)", async () => {
    const outcome = await simulateSasl(external(), {
      context: verified,
      initialResponse: new Uint8Array(0),
      client: () => null,
      authenticator: (_m, c) => ({ success: (c as ExternalCredentials).login === "alice" }),
    });
    expect(outcome.result?.success).toBe(true);
    const c = outcome.credentials as ExternalCredentials;
    expect(c).toBeInstanceOf(ExternalCredentials);
    expect(c.login).toBe("alice");
    expect(c.authzid).toBe("");
    expect(c.certificate).toBe(cert);
  });

  test("without an initial response the server sends an empty challenge", async () => {
    const outcome = await simulateSasl(external(), {
      context: verified,
      client: () => enc("alice"),
      authenticator: () => ({ success: true }),
    });
    expect(outcome.challenges).toEqual([new Uint8Array(0)]);
    expect((outcome.credentials as ExternalCredentials).authzid).toBe("alice");
  });

  test("trustCertificate: success without the authenticator; authzid must match", async () => {
    const ok = await simulateSasl(external({ trustCertificate: true }), {
      context: verified,
      initialResponse: enc("alice"),
      client: () => null,
    });
    expect(ok.result?.success).toBe(true);
    expect(ok.result?.authData).toMatchObject({ mechanism: "EXTERNAL", login: "alice" });
    const other = await simulateSasl(external({ trustCertificate: true }), {
      context: verified,
      initialResponse: enc("bob"),
      client: () => null,
    });
    expect(other.result?.success).toBe(false);
  });

  test("no TLS, no certificate, or an unverified one: failure", async () => {
    for (const context of [
      CLEAR,
      tlsContext(),
      tlsContext({ peerCertificate: cert, authorized: false }),
    ]) {
      const outcome = await simulateSasl(external(), {
        context,
        initialResponse: new Uint8Array(0),
        client: () => null,
        authenticator: () => ({ success: true }),
      });
      expect(outcome.result?.success).toBe(false);
      expect(outcome.result?.message).toMatch(/^535 5\.7\.1/);
    }
  });

  test("custom identity mapping", async () => {
    const outcome = await simulateSasl(
      external({ identity: (c) => (c as typeof cert).fingerprint256 }),
      {
        context: verified,
        initialResponse: new Uint8Array(0),
        client: () => null,
        authenticator: () => ({ success: true }),
      },
    );
    expect((outcome.credentials as ExternalCredentials).login).toBe("AB:CD");
  });

  test("available() only with a verified certificate", () => {
    expect(external().available?.(verified)).toBe(true);
    expect(external().available?.(CLEAR)).toBe(false);
    expect(external().available?.(tlsContext({ peerCertificate: cert }))).toBe(false);
  });

  test("CN helper handles arrays and missing subjects", () => {
    expect(certificateCommonName({ subject: { CN: ["x", "y"] } })).toBe("x");
    expect(certificateCommonName({})).toBeNull();
    expect(certificateCommonName(null)).toBeNull();
  });

  test("NUL or invalid UTF-8 in the authzid: 501", async () => {
    for (const bad of [enc("a\0b"), new Uint8Array([0xff])]) {
      const outcome = await simulateSasl(external(), {
        context: verified,
        initialResponse: bad,
        client: () => null,
        authenticator: () => ({ success: true }),
      });
      expect(outcome.result?.message).toMatch(/^501 /);
    }
  });
});
