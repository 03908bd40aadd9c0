import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { formatIPv6, parseCidrList, parseIPv4, parseIPv6 } from "../src/syntax/cidr.js";

describe("parseIPv4", () => {
  it.each([
    ["0.0.0.0", [0, 0, 0, 0]],
    ["127.0.0.1", [127, 0, 0, 1]],
    ["255.255.255.255", [255, 255, 255, 255]],
  ])("parses %s", (text, bytes) => {
    expect(parseIPv4(text)).toEqual(bytes);
  });

  // Python's ipaddress rejects all of these, and so must the PROXY v1 parser.
  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.0.0.1",
    "01.2.3.4",
    "1.2.3.04",
    "1..3.4",
    "1.2.3.4 ",
    "0x1.2.3.4",
    "1.2.3.a",
    "1234.2.3.4",
  ])("rejects %j", (text) => {
    expect(parseIPv4(text)).toBeNull();
  });
});

describe("parseIPv6 / formatIPv6", () => {
  it.each([
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:0DB8::0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["::ffff:1.2.3.4", "::ffff:1.2.3.4"],
    ["::ffff:0102:0304", "::ffff:1.2.3.4"],
    ["::1.2.3.4", "::102:304"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ["fe80::1:2:3:4:5:6", "fe80:0:1:2:3:4:5:6"],
  ])("formats %s as %s", (text, canonical) => {
    const hextets = parseIPv6(text);
    expect(hextets).not.toBeNull();
    expect(formatIPv6(hextets ?? [])).toBe(canonical);
  });

  it.each([
    "",
    ":",
    "::1::",
    "1:::2",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1::2:3:4:5:6:7:8",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    ":1::2",
    "1::2:",
    "12345::",
    "g::1",
    "::ffff:1.2.3",
    "::ffff:01.2.3.4",
    "1.2.3.4::",
    "1:2:3:4:5:6:7:1.2.3.4",
    "fe80::1%eth0",
  ])("rejects %j", (text) => {
    expect(parseIPv6(text)).toBeNull();
  });

  const hextets = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 });
  test.prop([hextets])("formatting round-trips through parsing", (h) => {
    const text = formatIPv6(h);
    expect(parseIPv6(text)).toEqual(h);
    expect(text).toBe(text.toLowerCase());
    expect(text.split("::").length).toBeLessThanOrEqual(2);
  });

  test.prop([fc.ipV6()])("accepts fast-check's IPv6 literals", (text) => {
    const h = parseIPv6(text);
    expect(h).not.toBeNull();
    expect(parseIPv6(formatIPv6(h ?? []))).toEqual(h);
  });
});

describe("parseCidrList", () => {
  it.each([
    [["10.0.0.0/8"], "10.1.2.3", true],
    [["10.0.0.0/8"], "11.0.0.1", false],
    [["10.0.0.0/8"], "::ffff:10.200.0.1", true],
    [["127.0.0.1"], "127.0.0.1", true],
    [["127.0.0.1"], "::ffff:127.0.0.1", true],
    [["127.0.0.1"], "127.0.0.2", false],
    [["::ffff:127.0.0.0/104"], "127.9.9.9", true],
    [["::1"], "::1", true],
    [["::1"], "0:0:0:0:0:0:0:1", true],
    [["::1"], "127.0.0.1", false],
    [["2001:db8::/32"], "2001:db8:ffff::1", true],
    [["2001:db8::/32"], "2001:DB8::1", true],
    [["2001:db8::/32"], "2001:db9::", false],
    [["0.0.0.0/0"], "203.0.113.9", true],
    [["0.0.0.0/0"], "::ffff:203.0.113.9", true],
    [["0.0.0.0/0"], "::1", false],
    [["::/0"], "2001:db8::1", true],
    [["::/0"], "192.0.2.1", true],
    [["192.168.1.10/24"], "192.168.1.200", true], // host bits are masked off
    [["192.168.1.10/24"], "192.168.2.1", false],
    [["172.16.0.0/12"], "172.31.255.255", true],
    [["172.16.0.0/12"], "172.32.0.0", false],
    [[" 10.0.0.1 "], "10.0.0.1", true],
    [["fe80::/10"], "fe80::1%eth0", true],
    [["10.0.0.0/8", "::1"], "::1", true],
    [[], "127.0.0.1", false],
    [["0.0.0.0/0", "::/0"], "localhost", false],
    [["0.0.0.0/0", "::/0"], "", false],
    [["0.0.0.0/0", "::/0"], "10.0.0.1/8", false],
  ])("%j matches %j: %s", (list, address, expected) => {
    expect(parseCidrList(list).matches(address)).toBe(expected);
  });

  it.each([
    ["", /not an IPv4 or IPv6 address/],
    ["localhost", /"localhost".*not an IPv4 or IPv6 address/],
    ["10.0.0.256", /not an IPv4 or IPv6 address/],
    ["10.0.0.0/33", /prefix length must be an integer from 0 to 32/],
    ["::/129", /prefix length must be an integer from 0 to 128/],
    ["10.0.0.0/", /prefix length/],
    ["10.0.0.0/08", /prefix length/],
    ["10.0.0.0/-1", /prefix length/],
    ["10.0.0.0/8/9", /prefix length/],
    ["10.0.0.0/ 8", /prefix length/],
    ["/8", /not an IPv4 or IPv6 address/],
    ["fe80::1%eth0", /not an IPv4 or IPv6 address/],
  ])("rejects entry %j", (entry, message) => {
    expect(() => parseCidrList(["127.0.0.1", entry])).toThrow(TypeError);
    expect(() => parseCidrList(["127.0.0.1", entry])).toThrow(message);
  });

  it("rejects non-string entries and non-arrays", () => {
    expect(() => parseCidrList([42 as unknown as string])).toThrow(/#0 must be a string/);
    expect(() => parseCidrList("10.0.0.0/8" as unknown as string[])).toThrow(TypeError);
  });

  test.prop([fc.ipV4()])("an IPv4 address matches its /32, 0.0.0.0/0 and its mapped form", (ip) => {
    expect(parseCidrList([`${ip}/32`]).matches(ip)).toBe(true);
    expect(parseCidrList([ip]).matches(ip)).toBe(true);
    expect(parseCidrList(["0.0.0.0/0"]).matches(ip)).toBe(true);
    expect(parseCidrList([`${ip}/32`]).matches(`::ffff:${ip}`)).toBe(true);
    expect(parseCidrList(["::1"]).matches(ip)).toBe(false);
  });

  test.prop([fc.ipV6()])("an IPv6 address matches its /128 and ::/0", (ip) => {
    expect(parseCidrList([`${ip}/128`]).matches(ip)).toBe(true);
    expect(parseCidrList([ip]).matches(ip)).toBe(true);
    expect(parseCidrList(["::/0"]).matches(ip)).toBe(true);
  });

  test.prop([fc.ipV4(), fc.nat(32)])(
    "an IPv4 address matches every block written from it",
    (ip, bits) => {
      expect(parseCidrList([`${ip}/${bits}`]).matches(ip)).toBe(true);
    },
  );

  test.prop([fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }), fc.nat(127)])(
    "flipping the bit right after the prefix leaves the block",
    (hextets, bits) => {
      const address = formatIPv6(hextets);
      const flipped = [...hextets];
      const index = Math.floor(bits / 16);
      flipped[index] = (flipped[index] ?? 0) ^ (0x8000 >> (bits % 16));
      const matcher = parseCidrList([`${address}/${bits + 1}`]);
      expect(matcher.matches(address)).toBe(true);
      expect(matcher.matches(formatIPv6(flipped))).toBe(false);
      expect(parseCidrList([`${address}/${bits}`]).matches(formatIPv6(flipped))).toBe(true);
    },
  );
});
