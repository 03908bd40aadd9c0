import type { SaslContext } from "@smtpkit/core";
import { type DigestName, digest } from "./crypto.js";

/** Channel-binding types the SCRAM -PLUS mechanisms support. */
export type ChannelBindingType = "tls-exporter" | "tls-server-end-point";

export const CHANNEL_BINDING_TYPES: readonly ChannelBindingType[] = [
  "tls-exporter",
  "tls-server-end-point",
];

type Tls = NonNullable<SaslContext["tls"]>;

/** Whether the transport can give the binding data of `type` (without computing it). */
export function canBind(type: ChannelBindingType, tls: Tls | null): boolean {
  if (!tls) return false;
  if (type === "tls-exporter") {
    // RFC 9266 §3: tls-exporter is for TLS 1.3 (TLS 1.2 only with the extended master secret,
    // which the TLS info does not tell).
    const protocol = (tls as { protocol?: unknown }).protocol;
    if (typeof protocol === "string" && protocol !== "TLSv1.3") return false;
    return typeof tls.exportKeyingMaterial === "function";
  }
  const der = tls.serverCertificate;
  return der instanceof Uint8Array && der.length > 0 && endPointHash(der) !== null;
}

/** The binding data for `type`, or `null` when this connection cannot provide it. */
export async function channelBindingData(
  type: ChannelBindingType,
  tls: Tls | null,
): Promise<Uint8Array | null> {
  if (!tls || !canBind(type, tls)) return null;
  try {
    if (type === "tls-exporter") {
      // RFC 9266: 32 bytes, label "EXPORTER-Channel-Binding", empty context (same as none in TLS 1.3).
      const material = tls.exportKeyingMaterial?.(32, "EXPORTER-Channel-Binding");
      return material instanceof Uint8Array && material.length === 32 ? material : null;
    }
    const der = tls.serverCertificate as Uint8Array;
    const hash = endPointHash(der);
    return hash === null ? null : await digest(hash, der);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// RFC 5929 §4.1: the certificate's signature hash, MD5 and SHA-1 upgraded to SHA-256.

const SIGNATURE_HASHES: Readonly<Record<string, DigestName>> = {
  "1.2.840.113549.1.1.4": "SHA-256", // md5WithRSAEncryption
  "1.2.840.113549.1.1.5": "SHA-256", // sha1WithRSAEncryption
  "1.2.840.113549.1.1.11": "SHA-256",
  "1.2.840.113549.1.1.12": "SHA-384",
  "1.2.840.113549.1.1.13": "SHA-512",
  "1.2.840.10045.4.1": "SHA-256", // ecdsa-with-SHA1
  "1.2.840.10045.4.3.2": "SHA-256",
  "1.2.840.10045.4.3.3": "SHA-384",
  "1.2.840.10045.4.3.4": "SHA-512",
  "1.2.840.10040.4.3": "SHA-256", // dsa-with-sha1
  "2.16.840.1.101.3.4.3.2": "SHA-256", // dsa-with-sha256
};

const DIGEST_OIDS: Readonly<Record<string, DigestName>> = {
  "1.3.14.3.2.26": "SHA-256", // sha1
  "2.16.840.1.101.3.4.2.1": "SHA-256",
  "2.16.840.1.101.3.4.2.2": "SHA-384",
  "2.16.840.1.101.3.4.2.3": "SHA-512",
};

const RSASSA_PSS = "1.2.840.113549.1.1.10";

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
  /** Offset just past this element. */
  readonly next: number;
}

function readTlv(der: Uint8Array, offset: number, limit = der.length): Tlv | null {
  if (offset + 2 > limit) return null;
  const tag = der[offset] as number;
  let length = der[offset + 1] as number;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) return null;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] as number);
    start += count;
  }
  const end = start + length;
  if (end > limit) return null;
  return { tag, start, end, next: end };
}

function readOid(der: Uint8Array, tlv: Tlv): string | null {
  if (tlv.tag !== 0x06 || tlv.end <= tlv.start) return null;
  const first = der[tlv.start] as number;
  const parts = [
    Math.min(2, Math.floor(first / 40)),
    first - Math.min(2, Math.floor(first / 40)) * 40,
  ];
  let value = 0;
  for (let i = tlv.start + 1; i < tlv.end; i++) {
    const byte = der[i] as number;
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** The hash RFC 5929 prescribes for this DER certificate; `null` when undefined (Ed25519, …). */
export function endPointHash(der: Uint8Array): DigestName | null {
  const certificate = readTlv(der, 0);
  if (certificate?.tag !== 0x30) return null;
  const tbs = readTlv(der, certificate.start, certificate.end);
  if (tbs?.tag !== 0x30) return null;
  const algorithm = readTlv(der, tbs.next, certificate.end);
  if (algorithm?.tag !== 0x30) return null;
  const oidTlv = readTlv(der, algorithm.start, algorithm.end);
  if (!oidTlv) return null;
  const oid = readOid(der, oidTlv);
  if (oid === null) return null;
  if (oid !== RSASSA_PSS) return SIGNATURE_HASHES[oid] ?? null;
  // RSASSA-PSS-params: SEQUENCE { [0] hashAlgorithm AlgorithmIdentifier DEFAULT sha1, ... }
  const params = readTlv(der, oidTlv.next, algorithm.end);
  if (params?.tag !== 0x30) return "SHA-256";
  const first = readTlv(der, params.start, params.end);
  if (first?.tag !== 0xa0) return "SHA-256";
  const hashAlgorithm = readTlv(der, first.start, first.end);
  if (hashAlgorithm?.tag !== 0x30) return null;
  const hashOid = readTlv(der, hashAlgorithm.start, hashAlgorithm.end);
  const name = hashOid ? readOid(der, hashOid) : null;
  return name === null ? null : (DIGEST_OIDS[name] ?? null);
}
