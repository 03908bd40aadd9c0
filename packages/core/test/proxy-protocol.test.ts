import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  PROXY_V1_MAX_LENGTH,
  type ProxyData,
  type ProxyParseResult,
  type ProxyTlv,
  parseProxyHeader,
} from "../src/syntax/proxy-protocol.js";

// Sample data is taken from aiosmtpd's tests/test_proxyprotocol.py so both parsers are held to the
// same cases.

/** Bytes from a string whose code points are all < 256 (like a Python bytes literal). */
function bin(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

function b64(text: string): Uint8Array {
  return bin(atob(text.replace(/\s/g, "")));
}

function concat(...chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

const V2_SIGNATURE = bin("\r\n\r\n\x00\r\nQUIT\n");

function v2(opts: {
  sig?: Uint8Array;
  ver?: number;
  cmd?: number;
  fam?: number;
  proto?: number;
  payload?: Uint8Array;
}): Uint8Array {
  const { sig = V2_SIGNATURE, ver = 2, cmd = 0, fam = 0, proto = 0, payload = bin("") } = opts;
  const length = payload.length;
  return concat(
    sig,
    Uint8Array.of((ver << 4) | cmd, (fam << 4) | proto, length >> 8, length & 0xff),
    payload,
  );
}

function port(value: number): Uint8Array {
  return Uint8Array.of(value >> 8, value & 0xff);
}

function complete(result: ProxyParseResult): { data: ProxyData; consumed: number } {
  if (result.status !== "complete") throw new Error("expected a complete result");
  return result;
}

function parseValid(buffer: Uint8Array): ProxyData {
  const { data, consumed } = complete(parseProxyHeader(buffer));
  expect(data.error).toBeNull();
  expect(data.valid).toBe(true);
  expect(consumed).toBe(data.raw.length);
  return data;
}

function parseError(buffer: Uint8Array): ProxyData {
  const { data } = complete(parseProxyHeader(buffer));
  expect(data.valid).toBe(false);
  return data;
}

function tlvMap(tlvs: ProxyTlv[] | null): Record<string, Uint8Array> {
  return Object.fromEntries((tlvs ?? []).map((tlv) => [tlv.name, tlv.value]));
}

const TEST_TLV_DATA_1 = bin(
  "\x03\x00\x04Z\xfd\xc6\xff\x02\x00\tAUTHORITI\x05\x00\tUNIKUE_ID" +
    "\x20\x00D\x01\x00\x00\x00\x00!\x00\x07TLSv1.3%\x00\x07RSA4096" +
    "$\x00\nRSA-SHA256#\x00\x1bECDHE-RSA-AES256-CBC-SHA384",
);

const TEST_TLV_DATA_2 = bin(
  "\x03\x00\x04Z\xfd\xc6\xff\x02\x00\tAUTHORIT2\x05\x00\tUNIQUEID2" +
    "\x20\x00D\x01\x00\x00\x00\x00!\x00\x07TLSv1.3%\x00\x07RSA4096" +
    "$\x00\nRSA-SHA256#\x00\x1bECDHE-RSA-AES256-CBC-SHA384" +
    "\x30\x00\x09something",
);

// Has a tail (b"Test data that is not part of PROXYv2.\n") that belongs to the next protocol.
const TEST_V2_DATA1_XTRA = b64(`
  DQoNCgANClFVSVQKIREAcn8AAAF/AAABsFJipQMABFT9xv8CAAlBVVRIT1JJVFkFAAlVTklRVUVf
  SUQgAEQBAAAAACEAB1RMU3YxLjIlAAdSU0E0MDk2JAAKUlNBLVNIQTI1NiMAG0VDREhFLVJTQS1B
  RVMyNTYtR0NNLVNIQTM4NFRlc3QgZGF0YSB0aGF0IGlzIG5vdCBwYXJ0IG9mIFBST1hZdjIuCg==`);

const TEST_V2_DATA1_EXACT = b64(`
  DQoNCgANClFVSVQKIREAcn8AAAF/AAABsFJipQMABFT9xv8CAAlBVVRIT1JJVFkFAAlVTklRVUVf
  SUQgAEQBAAAAACEAB1RMU3YxLjIlAAdSU0E0MDk2JAAKUlNBLVNIQTI1NiMAG0VDREhFLVJTQS1B
  RVMyNTYtR0NNLVNIQTM4NA==`);

const PUBLIC_V1_PATTERNS: Record<string, [string, string, string, number, number]> = {
  "PROXY TCP4 222.222.22.222 111.11.11.111 33504 25": [
    "INET",
    "222.222.22.222",
    "111.11.11.111",
    33504,
    25,
  ],
  "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443": [
    "INET",
    "192.168.0.1",
    "192.168.0.11",
    56324,
    443,
  ],
  "PROXY TCP4 192.0.2.0 192.0.2.255 42300 443": ["INET", "192.0.2.0", "192.0.2.255", 42300, 443],
  "PROXY TCP6 2001:db8:: 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff 42300 443": [
    "INET6",
    "2001:db8::",
    "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
    42300,
    443,
  ],
  "PROXY TCP4 12.97.16.194 136.179.21.69 31646 80": [
    "INET",
    "12.97.16.194",
    "136.179.21.69",
    31646,
    80,
  ],
  "PROXY TCP4 192.0.2.1 198.51.100.1 15221 110": ["INET", "192.0.2.1", "198.51.100.1", 15221, 110],
  "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535": [
    "INET",
    "255.255.255.255",
    "255.255.255.255",
    65535,
    65535,
  ],
  "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535": ["INET", "1.2.3.4", "5.6.7.8", 0, 65535],
  "PROXY TCP6 2020:dead::0001 2021:cafe::0002 8000 65535": [
    "INET6",
    "2020:dead::1",
    "2021:cafe::2",
    8000,
    65535,
  ],
  "PROXY TCP6 2020:00ad:0000:0000:0a00:0000:0000:0001 ::FFFF:10.0.0.1 1 2": [
    "INET6",
    "2020:ad::a00:0:0:1",
    "::ffff:10.0.0.1",
    1,
    2,
  ],
};

describe("PROXY v1", () => {
  it.each(Object.entries(PUBLIC_V1_PATTERNS))("accepts %s", (line, expected) => {
    const [family, srcAddress, dstAddress, srcPort, dstPort] = expected;
    const header = bin(`${line}\r\n`);
    const data = parseValid(concat(header, bin("EHLO example.org\r\n")));
    expect(data).toMatchObject({
      version: 1,
      command: "PROXY",
      family,
      protocol: "STREAM",
      srcAddress,
      dstAddress,
      srcPort,
      dstPort,
      tlvs: null,
    });
    expect(data.raw).toEqual(header);
    expect(data.rest).toEqual(bin(""));
  });

  it.each([
    ["PROXY UNKNOWN whatever\r\n", " whatever"],
    ["PROXY UNKNOWN\r\n", ""],
    ["PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", " 1.2.3.4 5.6.7.8 1 2"],
  ])("accepts %j as UNSPEC", (line, rest) => {
    const data = parseValid(bin(line));
    expect(data).toMatchObject({
      version: 1,
      command: "PROXY",
      family: "UNSPEC",
      protocol: "UNSPEC",
      srcAddress: null,
      dstAddress: null,
      srcPort: null,
      dstPort: null,
    });
    expect(data.rest).toEqual(bin(rest));
  });

  const dead = "2020:dead::0001";
  const cafe = "2021:cafe::0002";
  it.each([
    ["PROXY1 UNKNOWN whatevs\r\n", "PROXYv1 wrong signature"],
    ["PROXY TCP5 123.123.123.123 231.231.231.231 80 90\r\n", "PROXYv1 unrecognized family"],
    ["PROXY TCP 123.123.123.123 231.231.231.231 80 90\r\n", "PROXYv1 unrecognized family"],
    ["PROXY UDP4 123.123.123.123 231.231.231.231 80 90\r\n", "PROXYv1 unrecognized protocol"],
    ["PROXY TCPX4 123.123.123.123 231.231.231.231 80 90\r\n", "PROXYv1 unrecognized protocol"],
    [`PROXY UNKNOWN ${"*".repeat(100)}\r\n`, "PROXYv1 header too long"],
    ["PROXY UNKNOWN\n", "PROXYv1 malformed"],
    ["PROXY\r\n", "PROXYv1 malformed"],
    ["NOTPROX TCP4 1.2.3.4 5.6.7.8 65535 65535\r\n", "PROXY unrecognized signature"],
    ["PROXI TCP4 1.2.3.4 5.6.7.8 9 10\r\n", "PROXY unrecognized signature"],
    ["PROXY TCP6 1.2.3.4 5.6.7.8 65535 65535\r\n", "PROXYv1 address not IPv6"],
    [`PROXY TCP4 ${dead} ${cafe} 65535 65535\r\n`, "PROXYv1 address not IPv4"],
    [`PROXY TCP6 1.2.3.4 ${cafe} 65535 65535\r\n`, "PROXYv1 address not IPv6"],
    [`PROXY TCP6 ${dead} ${cafe} 02501 25\r\n`, "PROXYv1 port malformed"],
    [`PROXY TCP6  ${dead} ${cafe} 1 2\r\n`, "PROXYv1 address malformed"],
    [`PROXY TCP6 ${dead}  ${cafe} 1 2\r\n`, "PROXYv1 address malformed"],
    [`PROXY TCP6 ${dead} ${cafe}  8080 2\r\n`, "PROXYv1 port malformed"],
    [`PROXY TCP6 ${dead} ${cafe} 1  0\r\n`, "PROXYv1 port malformed"],
    [`PROXY TCP6 2020:dead::000g ${cafe} 1 2\r\n`, "PROXYv1 address malformed"],
    [`PROXY TCP6 ${dead} 2021:cafe::000h 1 2\r\n`, "PROXYv1 address malformed"],
    [`PROXY TCP6 ${dead} ${cafe} 0 25 \r\n`, "PROXYv1 unrecognized extraneous data"],
    [`PROXY TCP6 ${dead} ${cafe} 0 25 text\r\n`, "PROXYv1 unrecognized extraneous data"],
    ["PROXY TCP6 1.2.3.a 5.6.7.8 65535 65535\r\n", "PROXYv1 address malformed"],
    ["PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "PROXYv1 address malformed"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 65536 10200\r\n", "PROXYv1 src port out of bounds"],
    [`PROXY TCP6 ${dead} ${cafe} 10000 65536\r\n`, "PROXYv1 dst port out of bounds"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 65536 abc\r\n", "PROXYv1 port malformed"],
    ["PROXY TCP4\r\n", "PROXYv1 address malformed"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", "PROXYv1 port malformed"],
  ])("rejects %j with %s", (line, error) => {
    const buffer = bin(line);
    const { data, consumed } = complete(parseProxyHeader(buffer));
    expect(data.valid).toBe(false);
    expect(data.error).toBe(error);
    expect(data.version).toBe(error.startsWith("PROXYv1") ? 1 : null);
    expect(consumed).toBeLessThanOrEqual(Math.min(buffer.length, PROXY_V1_MAX_LENGTH));
  });

  it("fails 'header too long' at 107 buffered bytes without waiting for LF", () => {
    const line = bin(`PROXY UNKNOWN ${"*".repeat(93)}`);
    expect(line.length).toBe(PROXY_V1_MAX_LENGTH);
    expect(parseProxyHeader(line.subarray(0, 106))).toEqual({ status: "incomplete" });
    const { data, consumed } = complete(parseProxyHeader(line));
    expect(data.error).toBe("PROXYv1 header too long");
    expect(consumed).toBe(PROXY_V1_MAX_LENGTH);
  });

  it("accepts a header of exactly 107 bytes", () => {
    const line = bin(`PROXY UNKNOWN ${"*".repeat(91)}\r\n`);
    expect(line.length).toBe(PROXY_V1_MAX_LENGTH);
    expect(parseValid(line).rest.length).toBe(92);
  });

  it("waits for the rest of a cut header", () => {
    const good = bin("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
    expect(parseProxyHeader(good.subarray(0, 20))).toEqual({ status: "incomplete" });
    expect(parseProxyHeader(good.subarray(0, good.length - 1))).toEqual({ status: "incomplete" });
  });
});

describe("PROXY v2", () => {
  it("parses aiosmtpd's sample and leaves the SMTP tail alone", () => {
    const { data, consumed } = complete(parseProxyHeader(TEST_V2_DATA1_XTRA));
    expect(consumed).toBe(TEST_V2_DATA1_EXACT.length);
    expect(data).toMatchObject({
      valid: true,
      error: null,
      version: 2,
      command: "PROXY",
      family: "INET",
      protocol: "STREAM",
      srcAddress: "127.0.0.1",
      dstAddress: "127.0.0.1",
      srcPort: 45138,
      dstPort: 25253,
    });
    expect(data.raw).toEqual(TEST_V2_DATA1_EXACT);
    expect(new TextDecoder().decode(data.rest)).not.toContain("not part of PROXYv2");
    expect(tlvMap(data.tlvs)).toEqual({
      AUTHORITY: bin("AUTHORITY"),
      CRC32C: bin("T\xfd\xc6\xff"),
      UNIQUE_ID: bin("UNIQUE_ID"),
      SSL: expect.any(Uint8Array),
      SSL_VERSION: bin("TLSv1.2"),
      SSL_CIPHER: bin("ECDHE-RSA-AES256-GCM-SHA384"),
      SSL_SIG_ALG: bin("RSA-SHA256"),
      SSL_KEY_ALG: bin("RSA4096"),
    });
  });

  it.each([
    ["empty", bin("")],
    ["not empty", bin("asdfghjkl")],
  ])("accepts LOCAL UNSPEC/UNSPEC (%s)", (_, payload) => {
    const header = v2({ payload });
    const data = parseValid(header);
    expect(data).toMatchObject({
      version: 2,
      command: "LOCAL",
      family: "UNSPEC",
      protocol: "UNSPEC",
      srcAddress: null,
      srcPort: null,
    });
    expect(data.rest).toEqual(payload);
    expect(data.raw).toEqual(header);
  });

  const protocols = [
    [1, "STREAM"],
    [2, "DGRAM"],
  ] as const;
  const tails = [bin(""), bin("fake_tlv")];

  describe.each(protocols)("protocol %i (%s)", (proto, protocol) => {
    it.each(tails)("INET with tail %j", (tail) => {
      const payload = concat(Uint8Array.of(10, 212, 4, 33, 10, 11, 12, 13), port(0), port(65535));
      const data = parseValid(v2({ fam: 1, proto, payload: concat(payload, tail) }));
      expect(data).toMatchObject({
        command: "LOCAL",
        family: "INET",
        protocol,
        srcAddress: "10.212.4.33",
        dstAddress: "10.11.12.13",
        srcPort: 0,
        dstPort: 65535,
        tlvs: null, // "fake_tlv" does not parse as TLVs
      });
      expect(data.rest).toEqual(tail);
    });

    it.each(tails)("INET6 with tail %j", (tail) => {
      const src = bin("\x20\x20\xde\xad\0\0\0\0\0\0\0\0\0\0\0\x01");
      const dst = bin("\x20\x21\xca\xfe\0\0\0\0\0\0\0\0\0\0\0\x22");
      const payload = concat(src, dst, port(65534), port(8080), tail);
      const data = parseValid(v2({ cmd: 1, fam: 2, proto, payload }));
      expect(data).toMatchObject({
        command: "PROXY",
        family: "INET6",
        protocol,
        srcAddress: "2020:dead::1",
        dstAddress: "2021:cafe::22",
        srcPort: 65534,
        dstPort: 8080,
        tlvs: null,
      });
      expect(data.rest).toEqual(tail);
    });

    it.each(tails)("UNIX with tail %j", (tail) => {
      const path = (text: string) => concat(bin(text), new Uint8Array(108 - text.length));
      const payload = concat(path("/proc/source"), path("/proc/dest"), tail);
      const data = parseValid(v2({ fam: 3, proto, payload }));
      expect(data).toMatchObject({
        family: "UNIX",
        protocol,
        srcAddress: "/proc/source",
        dstAddress: "/proc/dest",
        srcPort: null,
        dstPort: null,
        tlvs: null,
      });
      expect(data.rest).toEqual(tail);
    });
  });

  it.each([
    [0, 1, "UNSPEC", "STREAM"],
    [0, 2, "UNSPEC", "DGRAM"],
    [1, 0, "INET", "UNSPEC"],
    [2, 0, "INET6", "UNSPEC"],
    [3, 0, "UNIX", "UNSPEC"],
  ])("keeps the tail undecoded for family %i protocol %i", (fam, proto, family, protocol) => {
    const payload = bin("whatever");
    const data = parseValid(v2({ fam, proto, payload }));
    expect(data).toMatchObject({ family, protocol, srcAddress: null, dstAddress: null });
    expect(data.srcPort).toBeNull();
    expect(data.rest).toEqual(payload);
  });

  it.each([
    [{ sig: bin("\r\n\r\n\x00\r\nQUIP\n") }, "PROXYv2 wrong signature"],
    [{ ver: 3 }, "PROXYv2 illegal version"],
    [{ ver: 1 }, "PROXYv2 illegal version"],
    [{ cmd: 2 }, "PROXYv2 unsupported command"],
    [{ fam: 4 }, "PROXYv2 unsupported family"],
    [{ proto: 3 }, "PROXYv2 unsupported protocol"],
    [
      // INET6 announced but only an INET address block sent
      { fam: 2, proto: 1, payload: bin("\xc0\xa8\x00\x0b\xac\x10\x00\x16\xff\xfe\x1f\x90") },
      "PROXYv2 truncated address",
    ],
    [{ fam: 1, proto: 2, payload: bin("\x7f\0\0\x01") }, "PROXYv2 truncated address"],
    [{ fam: 3, proto: 1, payload: new Uint8Array(215) }, "PROXYv2 truncated address"],
  ])("rejects %j with %s", (opts, error) => {
    const data = parseError(v2(opts));
    expect(data.version).toBe(2);
    expect(data.error).toBe(error);
  });

  it("reports a wrong signature as soon as the mismatching byte arrives", () => {
    const { data, consumed } = complete(parseProxyHeader(bin("\r\n\r\n\x00\r\nQUIP")));
    expect(data.error).toBe("PROXYv2 wrong signature");
    expect(consumed).toBe(11);
  });

  it("waits for the declared length", () => {
    expect(parseProxyHeader(TEST_V2_DATA1_EXACT.subarray(0, 20))).toEqual({ status: "incomplete" });
    expect(parseProxyHeader(TEST_V2_DATA1_EXACT.subarray(0, 15))).toEqual({ status: "incomplete" });
  });

  it("accepts the maximum declared length", () => {
    const payload = new Uint8Array(0xffff);
    payload.set(bin("\x04\xff\xfc"), 0); // one NOOP TLV filling the whole tail
    const header = v2({ cmd: 1, payload });
    expect(parseProxyHeader(header.subarray(0, header.length - 1)).status).toBe("incomplete");
    const data = parseValid(header);
    expect(data.raw.length).toBe(16 + 0xffff);
    expect(data.tlvs?.map((tlv) => tlv.name)).toEqual(["NOOP"]);
  });
});

describe("PROXY v2 TLVs", () => {
  const inet = concat(Uint8Array.of(127, 0, 0, 1, 127, 0, 0, 1), port(25), port(25));
  const withTlvs = (tlvs: Uint8Array) =>
    parseValid(v2({ cmd: 1, fam: 1, proto: 1, payload: concat(inet, tlvs) }));

  it("decodes aiosmtpd's TEST_TLV_DATA_1 with SSL sub-TLVs flattened", () => {
    const data = withTlvs(TEST_TLV_DATA_1);
    expect(data.rest).toEqual(TEST_TLV_DATA_1);
    expect(data.tlvs?.map((tlv) => [tlv.type, tlv.name])).toEqual([
      [0x03, "CRC32C"],
      [0x02, "AUTHORITY"],
      [0x05, "UNIQUE_ID"],
      [0x20, "SSL"],
      [0x21, "SSL_VERSION"],
      [0x25, "SSL_KEY_ALG"],
      [0x24, "SSL_SIG_ALG"],
      [0x23, "SSL_CIPHER"],
    ]);
    const map = tlvMap(data.tlvs);
    expect(map).toMatchObject({
      AUTHORITY: bin("AUTHORITI"),
      CRC32C: bin("Z\xfd\xc6\xff"),
      UNIQUE_ID: bin("UNIKUE_ID"),
      SSL_VERSION: bin("TLSv1.3"),
      SSL_CIPHER: bin("ECDHE-RSA-AES256-CBC-SHA384"),
      SSL_SIG_ALG: bin("RSA-SHA256"),
      SSL_KEY_ALG: bin("RSA4096"),
    });
    expect(map.ALPN).toBeUndefined();
    expect(map.SSL_CN).toBeUndefined();
    const ssl = data.tlvs?.find((tlv) => tlv.name === "SSL");
    expect(ssl).toMatchObject({ sslClient: 1, sslVerify: 0 });
    expect(ssl?.value.length).toBe(0x44);
  });

  it("decodes aiosmtpd's TEST_TLV_DATA_2 (NETNS after SSL)", () => {
    const data = withTlvs(TEST_TLV_DATA_2);
    const map = tlvMap(data.tlvs);
    expect(map).toMatchObject({
      CRC32C: bin("Z\xfd\xc6\xff"),
      AUTHORITY: bin("AUTHORIT2"),
      UNIQUE_ID: bin("UNIQUEID2"),
      SSL_VERSION: bin("TLSv1.3"),
      NETNS: bin("something"),
    });
    expect(data.tlvs?.at(-1)?.name).toBe("NETNS");
  });

  it("names every known type and unknown types as xNN", () => {
    const known: Array<[number, string]> = [
      [0x01, "ALPN"],
      [0x02, "AUTHORITY"],
      [0x03, "CRC32C"],
      [0x04, "NOOP"],
      [0x05, "UNIQUE_ID"],
      [0x21, "SSL_VERSION"],
      [0x22, "SSL_CN"],
      [0x23, "SSL_CIPHER"],
      [0x24, "SSL_SIG_ALG"],
      [0x25, "SSL_KEY_ALG"],
      [0x30, "NETNS"],
      [0xff, "xFF"],
      [0xe0, "xE0"],
      [0x0a, "x0A"],
    ];
    const data = withTlvs(concat(...known.map(([type]) => Uint8Array.of(type, 0, 1, 42))));
    expect(data.tlvs?.map((tlv) => [tlv.type, tlv.name])).toEqual(known);
    expect(data.tlvs?.[11]?.value).toEqual(Uint8Array.of(42));
  });

  it("reads SSL client and verify fields", () => {
    const data = withTlvs(bin("\x20\x00\x05\x07\xff\xff\xff\xfe"));
    expect(data.tlvs).toEqual([
      {
        type: 0x20,
        name: "SSL",
        value: bin("\x07\xff\xff\xff\xfe"),
        sslClient: 7,
        sslVerify: 0xfffffffe,
      },
    ]);
  });

  it.each([
    ["not TLVs at all", bin("fake_tlv")],
    [
      "value longer than the data",
      bin("\x03\x00\x04Z\xfd\xc6\xff\x02\x00\tAUTHORITI\x05\x00\tUNIKUE_I"),
    ],
    [
      "malformed SSL sub-TLV",
      bin("\x20\x00\x0d\x01\x02\x03\x04\x05\x21\x00\x07version\x22\x00\x09trunc"),
    ],
    ["SSL without its 5-byte preamble", bin("\x20\x00\x02\x01\x00")],
    ["truncated TLV header", bin("\x04\x00\x00\x04\x00")],
  ])("yields null TLVs but a valid header for %s", (_, tlvs) => {
    const data = withTlvs(tlvs);
    expect(data.tlvs).toBeNull();
    expect(data.rest).toEqual(tlvs);
  });

  it("handles deeply nested SSL vectors without recursion", () => {
    let nested = bin("\x04\x00\x00"); // innermost NOOP
    for (let depth = 0; depth < 6000; depth++) {
      nested = concat(bin("\x20"), port(nested.length + 5), new Uint8Array(5), nested);
    }
    const data = withTlvs(nested);
    expect(data.tlvs?.length).toBe(6001);
    expect(data.tlvs?.at(-1)?.name).toBe("NOOP");
  });
});

describe("signature detection", () => {
  it.each([
    ["P"],
    ["PRO"],
    ["PROXY"],
    ["PROXY TCP4 1.2"],
    ["\r"],
    ["\r\n\r\n\x00"],
    ["\r\n\r\n\x00\r\nQUI"],
  ])("waits on prefix %j", (text) => {
    expect(parseProxyHeader(bin(text))).toEqual({ status: "incomplete" });
  });

  it("waits on an empty buffer", () => {
    expect(parseProxyHeader(new Uint8Array(0))).toEqual({ status: "incomplete" });
  });

  it.each([
    ["HELO example.org\r\n", 1],
    ["H", 1],
    ["PRX", 3],
    ["\r\n\n", 3],
    ["\r\n\r\n\x01", 5],
  ])("rejects %j at once", (text, consumed) => {
    const result = complete(parseProxyHeader(bin(text)));
    expect(result.consumed).toBe(consumed);
    expect(result.data).toMatchObject({
      version: null,
      command: null,
      error: "PROXY unrecognized signature",
      valid: false,
    });
    expect(result.data.raw).toEqual(bin(text).subarray(0, consumed));
  });

  it("copies raw so later buffer reuse cannot change the result", () => {
    const buffer = bin("PROXY UNKNOWN x\r\n");
    const data = parseValid(buffer);
    buffer.fill(0);
    expect(data.raw).toEqual(bin("PROXY UNKNOWN x\r\n"));
    expect(data.rest).toEqual(bin(" x"));
  });
});

// ---- properties ----

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join("."));
const hextet = fc.nat(0xffff).map((n) => n.toString(16));
const ipv6 = fc.array(hextet, { minLength: 8, maxLength: 8 }).map((h) => h.join(":"));
const portNumber = fc.nat(0xffff);

const v1Header = fc
  .oneof(
    fc
      .tuple(ipv4, ipv4, portNumber, portNumber)
      .map(([s, d, sp, dp]) => `PROXY TCP4 ${s} ${d} ${sp} ${dp}\r\n`),
    fc
      .tuple(ipv6, ipv6, portNumber, portNumber)
      .map(([s, d, sp, dp]) => `PROXY TCP6 ${s} ${d} ${sp} ${dp}\r\n`),
    fc
      .string({ unit: fc.constantFrom(..."abc 123:.\r*"), maxLength: 90 })
      .map((rest) => `PROXY UNKNOWN${rest.length > 0 ? ` ${rest}` : ""}\r\n`),
  )
  .filter((line) => line.length <= PROXY_V1_MAX_LENGTH)
  .map(bin);

const ADDRESS_BYTES: Record<number, number> = { 1: 12, 2: 36, 3: 216 };
const v2Header = fc
  .record({
    cmd: fc.nat(1),
    fam: fc.nat(3),
    proto: fc.nat(2),
    extra: fc.uint8Array({ maxLength: 80 }),
    address: fc.uint8Array({ minLength: 216, maxLength: 216 }),
  })
  .map(({ cmd, fam, proto, extra, address }) => {
    const addressLength = proto === 0 ? 0 : (ADDRESS_BYTES[fam] ?? 0);
    return v2({ cmd, fam, proto, payload: concat(address.subarray(0, addressLength), extra) });
  });

const validHeader = fc.oneof(v1Header, v2Header);

const v1Prefix = bin("PROXY");
const noisyInput = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc
    .tuple(
      fc.constantFrom(v1Prefix, bin("PROXY TCP4 "), bin("PROXY TCP6 "), V2_SIGNATURE),
      fc.uint8Array({ maxLength: 300 }),
    )
    .map(([head, tail]) => concat(head, tail)),
  fc
    .tuple(fc.nat(255), fc.nat(255), fc.uint8Array({ maxLength: 300 }))
    .map(([a, b, tail]) => concat(V2_SIGNATURE, Uint8Array.of(a, b, 0, tail.length), tail)),
);

describe("properties", () => {
  test.prop([validHeader, fc.uint8Array({ maxLength: 64 })])(
    "every strict prefix is incomplete; trailing bytes never change the result",
    (header, trailing) => {
      for (let length = 0; length < header.length; length++) {
        expect(parseProxyHeader(header.subarray(0, length))).toEqual({ status: "incomplete" });
      }
      const alone = complete(parseProxyHeader(header));
      expect(alone.data.valid).toBe(true);
      expect(alone.consumed).toBe(header.length);
      expect(alone.data.raw).toEqual(header);
      expect(parseProxyHeader(concat(header, trailing))).toEqual(alone);
    },
  );

  test.prop([noisyInput, fc.uint8Array({ maxLength: 32 })])(
    "arbitrary bytes never throw, and complete results are stable",
    (buffer, more) => {
      const result = parseProxyHeader(buffer);
      if (result.status === "incomplete") {
        expect(buffer.length).toBeLessThan(16 + 0xffff);
        return;
      }
      const { data, consumed } = result;
      expect(consumed).toBeGreaterThan(0);
      expect(consumed).toBeLessThanOrEqual(buffer.length);
      expect(data.raw).toEqual(buffer.subarray(0, consumed));
      expect(data.valid).toBe(data.error === null);
      expect(parseProxyHeader(concat(buffer, more))).toEqual(result);
    },
  );

  test.prop([
    fc.uint8Array({ minLength: PROXY_V1_MAX_LENGTH - 5, maxLength: 400 }).map((bytes) =>
      concat(
        v1Prefix,
        bytes.map((byte) => (byte === 0x0a ? 0x20 : byte)),
      ),
    ),
  ])("a v1 buffer of 107+ bytes without LF is rejected immediately", (buffer) => {
    const { data, consumed } = complete(parseProxyHeader(buffer));
    expect(data.error).toBe("PROXYv1 header too long");
    expect(consumed).toBe(PROXY_V1_MAX_LENGTH);
  });
});
