/**
 * Reloads the certificate of a running server when its files change or on SIGHUP. Certificates
 * are usually replaced by rename (certbot points `live/…/fullchain.pem` at a new archive file), so
 * the directories are watched, not the files, and the files are polled too (the polling `stat`
 * follows symlinks, and `fs.watch` misses changes on some file systems). Events are debounced:
 * key and certificate are written one after the other.
 */
import { X509Certificate } from "node:crypto";
import {
  type FSWatcher,
  readFileSync,
  type StatsListener,
  unwatchFile,
  watch,
  watchFile,
} from "node:fs";
import { basename, dirname } from "node:path";
import { type CliOptions, loadTlsPair, type TlsFiles } from "./options.js";

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

type PemPair = { readonly cert: string | Uint8Array; readonly key: string | Uint8Array };

/** The pair as one string, to tell a real change from a file rewritten with the same bytes. */
const fingerprint = (pair: PemPair): string =>
  `${Buffer.from(pair.cert).toString("base64")}:${Buffer.from(pair.key).toString("base64")}`;

export interface CertificateWatchOptions<Pair> {
  readonly files: CertificateFiles;
  /** Reads and checks the pair (throws, saying why, when it is unusable). */
  readonly load: () => Pair & PemPair;
  /** Hands the new pair to the server (`server.setTls()`); may throw. */
  readonly apply: (pair: Pair) => void;
  readonly report: { info(message: string): void; error(message: string): void };
  /** Milliseconds after the last change before reloading. Default 500. */
  readonly debounce?: number;
  /** Milliseconds between polls of the files. Default 2000. */
  readonly interval?: number;
}

/** `CN=mx.example.com, expires 2027-03-01T12:00:00.000Z`: what an operator checks after a renewal. */
export function describeCertificate(cert: string | Uint8Array): string {
  const x509 = new X509Certificate(cert);
  const subject = x509.subject.replaceAll("\n", ", ");
  return `subject ${subject}, expires ${new Date(x509.validTo).toISOString()}`;
}

export class CertificateWatch<Pair> {
  readonly #options: CertificateWatchOptions<Pair>;
  readonly #watchers: FSWatcher[] = [];
  readonly #polled: string[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** The pair last applied, so a change that is no change is not reloaded. */
  #current: string;

  constructor(options: CertificateWatchOptions<Pair>, current: PemPair) {
    this.#options = options;
    this.#current = fingerprint(current);
  }

  /** Starts watching; changes from now on reload the certificate. */
  start(): this {
    const { files, interval = 2000 } = this.#options;
    const names = new Set([files.cert, files.key]);
    for (const directory of new Set([...names].map((file) => dirname(file)))) {
      try {
        const watcher = watch(directory, { persistent: false }, (_event, name) => {
          if (name === null || [...names].some((file) => basename(file) === String(name)))
            this.#changed();
        });
        watcher.on("error", () => watcher.close()); // the directory went away: polling remains
        this.#watchers.push(watcher);
      } catch {
        // No inotify here: polling alone.
      }
    }
    const onPoll: StatsListener = (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size)
        this.#changed();
    };
    for (const file of names) {
      watchFile(file, { persistent: false, interval }, onPoll);
      this.#polled.push(file);
    }
    return this;
  }

  /**
   * Reads the files and applies them now (SIGHUP). A pair that cannot be used leaves the current
   * certificate in place; either way one line says what happened.
   */
  reload(why: string): boolean {
    const { load, apply, report, files } = this.#options;
    let pair: Pair & PemPair;
    try {
      pair = load();
      const text = fingerprint(pair);
      if (why !== "SIGHUP" && text === this.#current) return false; // rewritten, unchanged
      apply(pair);
      this.#current = text;
    } catch (error) {
      report.error(
        `certificate ${files.cert} not reloaded (${why}), keeping the current one: ${(error as Error).message}`,
      );
      return false;
    }
    report.info(
      `certificate reloaded (${why}) from ${files.cert}: ${describeCertificate(pair.cert)}`,
    );
    return true;
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    for (const watcher of this.#watchers.splice(0)) watcher.close();
    for (const file of this.#polled.splice(0)) unwatchFile(file);
  }

  #changed(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.reload("files changed");
    }, this.#options.debounce ?? 500);
    this.#timer.unref?.();
  }
}

/**
 * Watches the files of the certificate the server uses (`--smtpscert` if given, else
 * `--tlscert`), checked as at start-up, and hands every good new pair to `server.setTls()`.
 * `serving` is what the server started with. `null` without TLS.
 */
export function watchCertificates(
  server: { setTls(tls: TlsFiles): void },
  options: CliOptions,
  serving: { readonly tls?: TlsFiles | undefined; readonly smtps?: TlsFiles | undefined },
  report: CertificateWatchOptions<TlsFiles>["report"],
): CertificateWatch<TlsFiles> | null {
  const prefix = options.smtps ? "smtps" : "tls";
  const files = options[prefix];
  const current = serving[prefix]; // read before privileges were dropped
  if (!files || !current) return null;
  const load = (): TlsFiles => ({
    ...loadTlsPair(prefix, files, (path) => readFileSync(path)),
    ...options.tlsSettings,
  });
  const watcher = new CertificateWatch(
    { files, load, apply: (pair) => server.setTls(pair), report },
    current,
  );
  return watcher.start();
}
