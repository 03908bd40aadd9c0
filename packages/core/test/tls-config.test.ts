import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { CertificateMap, CurrentCertificates, normalizeServername } from "../src/server/index.js";

interface Entry {
  readonly cert?: string;
  readonly minVersion?: string;
}
/** A "context" that is just the entry it was built from, refusing certificates named "bad". */
const build = (entry: Entry): Entry => {
  if (entry.cert === "bad") throw new Error("key values mismatch");
  return entry;
};

const options = {
  cert: "default",
  minVersion: "TLSv1.3",
  sni: {
    "mx.example.com": { cert: "mx" },
    "*.example.com": { cert: "wildcard" },
    "a.b.example.com": { cert: "deep" },
    "Upper.Example.NET.": { cert: "upper" },
  },
};

describe("CertificateMap", () => {
  const map = new CertificateMap(options, build);

  test("exact names, then the wildcard one label up, then the default", () => {
    expect(map.select("mx.example.com").cert).toBe("mx");
    expect(map.select("smtp.example.com").cert).toBe("wildcard");
    expect(map.select("a.b.example.com").cert).toBe("deep");
    expect(map.select("c.b.example.com").cert).toBe("default"); // *.example.com is one label
    expect(map.select("example.com").cert).toBe("default");
    expect(map.select("example.org").cert).toBe("default");
    expect(map.select(null).cert).toBe("default");
    expect(map.select("").cert).toBe("default");
  });

  test("names ignore case and a trailing dot, in the map and from the client", () => {
    expect(map.select("MX.EXAMPLE.COM.").cert).toBe("mx");
    expect(map.select("upper.example.net").cert).toBe("upper");
    expect(map.names).toContain("upper.example.net");
  });

  test("top-level options are laid under every entry", () => {
    expect(map.select("mx.example.com").minVersion).toBe("TLSv1.3");
    expect(map.default.minVersion).toBe("TLSv1.3");
    const withDefault = new CertificateMap({ minVersion: "x", default: { cert: "d" } }, build);
    expect(withDefault.default).toEqual({ minVersion: "x", cert: "d" });
  });

  test("a bad entry or pattern throws, naming it", () => {
    expect(
      () => new CertificateMap({ cert: "ok", sni: { "a.test": { cert: "bad" } } }, build),
    ).toThrow(/certificate for a\.test: key values mismatch/);
    expect(() => new CertificateMap({ cert: "bad" }, build)).toThrow(/default certificate/);
    for (const pattern of ["*.com", "*", "a..b", "-a.test", "a_b.test", "*.*.test", "x*.test"]) {
      expect(
        () => new CertificateMap({ cert: "ok", sni: { [pattern]: { cert: "ok" } } }, build),
      ).toThrow(/neither a host name/);
    }
  });

  test.prop([fc.string({ maxLength: 300 })])(
    "any client name selects a configured entry",
    (name) => {
      expect(["default", "mx", "wildcard", "deep", "upper"]).toContain(map.select(name).cert);
    },
  );

  test.prop([fc.domain()])(
    "a name one label under example.com gets the wildcard or its own",
    (domain) => {
      const label = normalizeServername(domain)?.split(".")[0] ?? "x";
      const expected = label === "mx" ? "mx" : "wildcard";
      expect(map.select(`${label}.example.com`).cert).toBe(expected);
    },
  );

  test.prop([fc.string({ maxLength: 300 })])("normalizeServername never throws", (name) => {
    const host = normalizeServername(name);
    if (host !== null) expect(normalizeServername(host)).toBe(host);
  });
});

describe("CurrentCertificates", () => {
  test("replace() swaps every entry; a bad set throws and the current one stays", () => {
    const current = new CurrentCertificates({ cert: "one" } as Entry, build);
    expect(current.default.cert).toBe("one");
    current.replace({ cert: "two", sni: { "mx.test": { cert: "mx" } } } as Entry);
    expect(current.default.cert).toBe("two");
    expect(current.select("mx.test").cert).toBe("mx");
    expect(() =>
      current.replace({ cert: "three", sni: { "mx.test": { cert: "bad" } } } as Entry),
    ).toThrow();
    expect(current.default.cert).toBe("two");
    expect(current.select("mx.test").cert).toBe("mx");
    expect(current.options.cert).toBe("two");
  });
});
