import { createHash, createHmac } from "node:crypto";
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { hmacMd5, md5 } from "../src/md5.js";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const enc = (text: string): Uint8Array => new TextEncoder().encode(text);

describe("MD5 (RFC 1321 A.5 test suite)", () => {
  const vectors: [string, string][] = [
    ["", "d41d8cd98f00b204e9800998ecf8427e"],
    ["a", "0cc175b9c0f1b6a831c399e269772661"],
    ["abc", "900150983cd24fb0d6963f7d28e17f72"],
    ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
    ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
    [
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f",
    ],
    [
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
      "57edf4a22be3c955ac49da2e2107b67a",
    ],
  ];
  for (const [input, expected] of vectors) {
    test(`MD5("${input.slice(0, 20)}")`, () => {
      expect(hex(md5(enc(input)))).toBe(expected);
    });
  }

  test.prop([fc.uint8Array({ maxLength: 300 })])("matches node:crypto", (data) => {
    expect(hex(md5(data))).toBe(createHash("md5").update(data).digest("hex"));
  });
});

describe("HMAC-MD5 (RFC 2104 / RFC 2202 test cases)", () => {
  test("key 0x0b*16, 'Hi There'", () => {
    expect(hex(hmacMd5(new Uint8Array(16).fill(0x0b), enc("Hi There")))).toBe(
      "9294727a3638bb1c13f48ef8158bfc9d",
    );
  });
  test("key 'Jefe'", () => {
    expect(hex(hmacMd5(enc("Jefe"), enc("what do ya want for nothing?")))).toBe(
      "750c783e6ab0b503eaa86e310a5db738",
    );
  });
  test("key 0xAA*16, data 0xDD*50", () => {
    expect(hex(hmacMd5(new Uint8Array(16).fill(0xaa), new Uint8Array(50).fill(0xdd)))).toBe(
      "56be34521d144c88dbb8c733f0e8b3f6",
    );
  });
  test("key longer than the block (RFC 2202 case 6)", () => {
    expect(
      hex(
        hmacMd5(
          new Uint8Array(80).fill(0xaa),
          enc("Test Using Larger Than Block-Size Key - Hash Key First"),
        ),
      ),
    ).toBe("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd");
  });
  test.prop([fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 200 })])(
    "matches node:crypto",
    (key, data) => {
      expect(hex(hmacMd5(key, data))).toBe(createHmac("md5", key).update(data).digest("hex"));
    },
  );
});
