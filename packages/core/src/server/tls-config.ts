/**
 * TLS settings every adapter shares, runtime-free: a certificate per host name (SNI, with
 * `*.example.com` wildcards), the default one, and the swap of the current certificates for new
 * handshakes while sessions already secured keep theirs. An adapter supplies `build`, which turns
 * one entry into its runtime's context (Node: `tls.createSecureContext`) and throws when the key
 * or certificate is bad.
 */

/** The oldest TLS version the adapters accept unless told otherwise. */
export const DEFAULT_MIN_TLS_VERSION = "TLSv1.2";

export type TlsVersion = "TLSv1.2" | "TLSv1.3";

/** The protocol numbers of the TLS versions (what BoringSSL and Bun take as `minVersion`). */
export const TLS_VERSION_NUMBERS: Readonly<Record<TlsVersion, number>> = {
  "TLSv1.2": 0x0303,
  "TLSv1.3": 0x0304,
};

/**
 * The part of an adapter's TLS options that picks certificates. Without `default`, the top-level
 * keys (`key`, `cert`...) are the default certificate. Each `sni` entry, and `default`, is laid
 * over the top-level options, so `minVersion`, `ciphers`, `ca` set once apply to every name.
 */
export interface SniOptions<Entry> {
  /** The certificate for clients that send no name, or one not in `sni`. */
  readonly default?: Entry | undefined;
  /** A certificate per host name: `"mx.example.com"`, or `"*.example.com"` for one label more. */
  readonly sni?: Readonly<Record<string, Entry>> | undefined;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A host name lower-cased and without its trailing dot; `null` when it is not one. */
export function normalizeServername(name: string | null | undefined): string | null {
  if (typeof name !== "string" || name.length === 0 || name.length > 254) return null;
  const host = (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
  const labels = host.split(".");
  return labels.every((label) => LABEL.test(label)) ? host : null;
}

/** A key of an `sni` map, checked: a host name, or `*.` and a host name of two labels or more. */
function sniPattern(pattern: string): string {
  const wildcard = pattern.startsWith("*.");
  const host = normalizeServername(wildcard ? pattern.slice(2) : pattern);
  if (host === null || (wildcard && !host.includes("."))) {
    throw new TypeError(`tls.sni: "${pattern}" is neither a host name nor *.domain`);
  }
  return wildcard ? `*.${host}` : host;
}

/**
 * The contexts built from one set of options: exact names first, then the wildcard for the name
 * minus its first label (`*.example.com` matches `mx.example.com`, not `example.com` nor
 * `a.mx.example.com`, as RFC 6125 §6.4.3), then the default.
 */
export class CertificateMap<Options extends object, Context> {
  readonly default: Context;
  readonly #byName: ReadonlyMap<string, Context>;

  /** Builds every context first: throws (naming the entry) if any key or certificate is bad. */
  constructor(options: Options & SniOptions<object>, build: (entry: Options) => Context) {
    const { default: fallback, sni, ...common } = options;
    const entry = (what: string, own: object | undefined): Context => {
      try {
        return build((own === undefined ? common : { ...common, ...own }) as Options);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new TypeError(`${what}: ${reason}`, { cause: error });
      }
    };
    this.default = entry("the default certificate", fallback);
    const byName = new Map<string, Context>();
    for (const [pattern, own] of Object.entries(sni ?? {})) {
      byName.set(sniPattern(pattern), entry(`the certificate for ${pattern}`, own));
    }
    this.#byName = byName;
  }

  /** The names configured (normalised), exact ones and wildcards. */
  get names(): string[] {
    return [...this.#byName.keys()];
  }

  /** The context for the name the client asked for (SNI); the default for none or no match. */
  select(servername: string | null | undefined): Context {
    const host = normalizeServername(servername);
    if (host === null || this.#byName.size === 0) return this.default;
    const exact = this.#byName.get(host);
    if (exact !== undefined) return exact;
    const dot = host.indexOf(".");
    const wildcard = dot > 0 ? this.#byName.get(`*${host.slice(dot)}`) : undefined;
    return wildcard ?? this.default;
  }
}

/**
 * The certificates new handshakes get, swappable: `replace()` builds the new set completely
 * before it takes the place of the old, so a bad certificate throws and the old ones stay.
 * Connections already secured are not touched (their TLS state does not refer back here).
 */
export class CurrentCertificates<Options extends object, Context> {
  #options: Options;
  #map: CertificateMap<Options, Context>;
  readonly #build: (entry: Options) => Context;

  constructor(options: Options & SniOptions<object>, build: (entry: Options) => Context) {
    this.#build = build;
    this.#map = new CertificateMap(options, build);
    this.#options = options;
  }

  /** The options the current certificates were built from. */
  get options(): Options {
    return this.#options;
  }

  get default(): Context {
    return this.#map.default;
  }

  get names(): string[] {
    return this.#map.names;
  }

  select(servername: string | null | undefined): Context {
    return this.#map.select(servername);
  }

  /** Swaps in new options for the handshakes from now on; throws, changing nothing, if bad. */
  replace(options: Options & SniOptions<object>): void {
    this.#map = new CertificateMap(options, this.#build);
    this.#options = options;
  }
}
