import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { canBind, channelBindingData, endPointHash } from "../src/channel-binding.js";

const dir = mkdtempSync(join(tmpdir(), "smtpkit-cb-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function certificate(name: string, keyArgs: string[], digest: string | null): Uint8Array {
  const key = join(dir, `${name}.key`);
  const pem = join(dir, `${name}.pem`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      ...keyArgs,
      "-nodes",
      "-keyout",
      key,
      "-out",
      pem,
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      ...(digest ? [`-${digest}`] : []),
    ],
    { stdio: "ignore" },
  );
  return new Uint8Array(new X509Certificate(readFileSync(pem)).raw);
}

describe("tls-server-end-point (RFC 5929)", () => {
  test.each([
    ["rsa-sha256", ["rsa:2048"], "sha256", "SHA-256"],
    ["rsa-sha1", ["rsa:2048"], "sha1", "SHA-256"],
    ["rsa-sha384", ["rsa:2048"], "sha384", "SHA-384"],
    ["ec-sha512", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "sha512", "SHA-512"],
    ["ed25519", ["ed25519"], null, null],
  ] as const)("%s certificate", async (name, keyArgs, digest, expected) => {
    const der = certificate(name, [...keyArgs], digest);
    expect(endPointHash(der)).toBe(expected);
    const tls = { peerCertificate: null, authorized: false, serverCertificate: der };
    const data = await channelBindingData("tls-server-end-point", tls);
    if (expected === null) {
      expect(data).toBeNull();
      expect(canBind("tls-server-end-point", tls)).toBe(false);
    } else {
      const node = expected.toLowerCase().replace("-", "");
      expect(Buffer.from(data as Uint8Array).toString("hex")).toBe(
        createHash(node).update(der).digest("hex"),
      );
    }
  });

  test("RSA-PSS with SHA-384 parameters", () => {
    const der = certificate("pss", ["rsa-pss", "-pkeyopt", "rsa_pss_keygen_md:sha384"], "sha384");
    expect(endPointHash(der)).toBe("SHA-384");
  });

  test("garbage is not a certificate", () => {
    expect(endPointHash(new Uint8Array([0x30, 0x03, 1, 2, 3]))).toBeNull();
    expect(endPointHash(new Uint8Array(0))).toBeNull();
  });
});

describe("tls-exporter (RFC 9266)", () => {
  test("asks for 32 bytes labelled EXPORTER-Channel-Binding", async () => {
    const calls: [number, string][] = [];
    const tls = {
      peerCertificate: null,
      authorized: false,
      protocol: "TLSv1.3",
      exportKeyingMaterial: (length: number, label: string) => {
        calls.push([length, label]);
        return new Uint8Array(length).fill(1);
      },
    };
    expect(await channelBindingData("tls-exporter", tls)).toEqual(new Uint8Array(32).fill(1));
    expect(calls).toEqual([[32, "EXPORTER-Channel-Binding"]]);
  });

  test("an exporter that throws means no binding", async () => {
    const tls = {
      peerCertificate: null,
      authorized: false,
      exportKeyingMaterial: () => {
        throw new Error("no");
      },
    };
    expect(await channelBindingData("tls-exporter", tls)).toBeNull();
  });
});
