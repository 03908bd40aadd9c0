import type { Handler, SMTP, SmtpOptions } from "@smtpkit/core/server";

/** PEM key and certificate: what every adapter's `tls` / `smtps` option takes at least. */
export interface PemKeyPair {
  readonly key: string;
  readonly cert: string;
}

/** One certificate, or a certificate per host name (SNI, `*.domain` wildcards) and a default. */
export type ComplianceTls =
  | (PemKeyPair & { readonly minVersion?: "TLSv1.2" | "TLSv1.3" })
  | { readonly default: PemKeyPair; readonly sni?: Readonly<Record<string, PemKeyPair>> };

/** The part of `serve()`'s options the suite uses: the SMTP options plus the shared adapter keys. */
export interface ComplianceServeOptions extends SmtpOptions {
  readonly host?: string;
  readonly port?: number;
  /** Enables STARTTLS. */
  readonly tls?: ComplianceTls;
  /** Implicit TLS (SMTPS). */
  readonly smtps?: ComplianceTls;
  readonly smtpClass?: new (handler: Handler, options: SmtpOptions) => SMTP;
  readonly maxConnections?: number;
  readonly closeTimeout?: number;
}

/** What `serve()` resolves to, in every adapter (`SmtpServer`). */
export interface ComplianceServer {
  readonly host: string;
  readonly port: number;
  /** Sessions open now. */
  readonly connections: number;
  close(options?: { timeout?: number }): Promise<void>;
  /** New certificates for the handshakes from now on; throws (keeping the old) when bad. */
  setTls(tls: ComplianceTls): void;
}

/** The adapter under test: `serve(handler, options)` of @smtpkit/node, @smtpkit/deno, @smtpkit/bun. */
export type ServeFunction = (
  handler: Handler,
  options: ComplianceServeOptions,
) => Promise<ComplianceServer>;

/** A client-side TCP connection on the runtime's own sockets (Deno.connect, Bun.connect, node:net). */
export interface ClientSocket {
  /** Resolves once the runtime has taken all the bytes (so a server that stops reading blocks it). */
  write(data: Uint8Array): Promise<void>;
  /** The next received bytes; `null` at end of input (or after an error). One read at a time. */
  read(): Promise<Uint8Array | null>;
  /** Client side of STARTTLS, verifying the server against `ca`; use the returned socket after. */
  startTls(options: { servername: string; ca: string }): Promise<ClientSocket>;
  /** Closes at once (no more reads or writes). */
  close(): void;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The runtime the client side runs on: its sockets and its child processes. */
export interface ComplianceRuntime {
  /** `"node"`, `"deno"`, `"bun"`: shown in the case names. */
  readonly name: string;
  connect(host: string, port: number): Promise<ClientSocket>;
  /** Runs a program to completion (openssl, node with Nodemailer, python3 with smtplib). */
  exec(command: string, args: readonly string[]): Promise<ExecResult>;
}

export interface ComplianceOptions {
  readonly serve: ServeFunction;
  readonly runtime: ComplianceRuntime;
  /** The Node binary that runs Nodemailer. Default `"node"` (from PATH). */
  readonly node?: string;
  /** The Python binary that runs smtplib. Default `"python3"`. */
  readonly python?: string;
  /** Skip named cases, with the reason (shown by the runners). A gap must be documented. */
  readonly skip?: Readonly<Record<string, string>>;
}

/** One named case; `run()` throws on failure. */
export interface ComplianceCase {
  readonly name: string;
  /** Milliseconds a runner should allow. */
  readonly timeout: number;
  /** Set when the adapter declared this case a known gap (`ComplianceOptions.skip`). */
  readonly skip?: string;
  run(): Promise<void>;
}
