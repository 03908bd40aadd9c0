import type {
  Envelope,
  Handler,
  Session,
  SMTP,
  SmtpTransport,
  TlsInfo,
} from "@smtpkit/core/server";
import { match, within } from "../assert.js";
import { SmtpClient } from "../client.js";
import { makeCertificate } from "../real-clients.js";
import type {
  ComplianceCase,
  ComplianceOptions,
  ComplianceRuntime,
  ComplianceServeOptions,
  ComplianceServer,
  PemKeyPair,
} from "../types.js";

/** Only the loopback address: no case ever reaches further. */
export const HOST = "127.0.0.1";
export const HOSTNAME = "mx.compliance.test";
export const GREETING = /^220 mx\.compliance\.test /;
export const decoder = new TextDecoder();
export const MiB = 1024 * 1024;

export interface Received {
  readonly mailFrom: string | null;
  readonly rcptTos: string[];
  readonly content: string;
  readonly ssl: TlsInfo | null;
  readonly peer: Session["peer"];
  readonly authenticated: boolean | null;
  readonly authData: unknown;
}

/** aiosmtpd's Sink that remembers what it got. */
export function sink(): Handler & { messages: Received[] } {
  const messages: Received[] = [];
  return {
    messages,
    handleRCPT(_server, _session, _envelope, address) {
      return address.startsWith("nobody@") ? "550 5.1.1 No such user" : undefined;
    },
    handleDATA(_server: SMTP, session: Session, envelope: Envelope) {
      const content = envelope.content;
      messages.push({
        mailFrom: envelope.mailFrom,
        rcptTos: [...envelope.rcptTos],
        content: typeof content === "string" ? content : decoder.decode(content ?? undefined),
        ssl: session.ssl,
        peer: session.peer,
        authenticated: session.authenticated,
        authData: session.authData,
      });
      return "250 2.0.0 OK";
    },
  };
}

/** The SmtpTransport as the session sees it, counting the bytes it reads. */
export function counting(transport: SmtpTransport, add: (bytes: number) => void): SmtpTransport {
  return {
    get peer() {
      return transport.peer;
    },
    get local() {
      return transport.local;
    },
    get tls() {
      return transport.tls;
    },
    get canStartTls() {
      return transport.canStartTls;
    },
    async read() {
      const chunk = await transport.read();
      if (chunk) add(chunk.length);
      return chunk;
    },
    write: (data) => transport.write(data),
    startTls: () => transport.startTls(),
    close: () => transport.close(),
    destroy: () => transport.destroy(),
  };
}

/** 32-bit FNV-1a, to compare a 20 MB body on both ends without keeping it. */
export function fnv1a(hash: number, data: Uint8Array): number {
  let h = hash;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ (data[i] as number), 0x01000193);
  return h >>> 0;
}
export const FNV_OFFSET = 0x811c9dc5;

/** `lines` numbered 80-octet CRLF lines (none starts with a dot). */
export function numberedLines(lines: number): Uint8Array {
  const template = new TextEncoder().encode(`00000000 ${"x".repeat(69)}\r\n`);
  const out = new Uint8Array(lines * template.length);
  for (let i = 0; i < lines; i++) {
    const offset = i * template.length;
    out.set(template, offset);
    const digits = String(i).padStart(8, "0");
    for (let d = 0; d < 8; d++) out[offset + d] = digits.charCodeAt(d);
  }
  return out;
}

/** What a case sees of the running server. */
export interface Context {
  readonly server: ComplianceServer;
  connect(): Promise<SmtpClient>;
  greeted(): Promise<SmtpClient>;
}

/** What every case file gets: the runtime, the real clients' commands, and the shared steps. */
export interface CaseKit {
  readonly runtime: ComplianceRuntime;
  readonly node: string;
  readonly python: string;
  readonly cases: ComplianceCase[];
  /** A certificate for localhost, made once per suite. */
  pem(): Promise<PemKeyPair>;
  /** Starts `serve()` on 127.0.0.1, runs `body`, then closes every client and the server. */
  withServer(
    handler: Handler,
    serveOptions: ComplianceServeOptions,
    body: (context: Context) => Promise<void>,
  ): Promise<void>;
  /** Opens a transaction up to the 354 reply. */
  openData(client: SmtpClient): Promise<void>;
  add(name: string, timeout: number, run: () => Promise<void>): void;
}

export function caseKit(options: ComplianceOptions): CaseKit {
  const { serve, runtime } = options;
  const node = options.node ?? "node";
  const python = options.python ?? "python3";
  let certificate: Promise<PemKeyPair> | null = null;
  const pem = (): Promise<PemKeyPair> => {
    certificate ??= makeCertificate(runtime);
    return certificate;
  };

  async function withServer(
    handler: Handler,
    serveOptions: ComplianceServeOptions,
    body: (context: Context) => Promise<void>,
  ): Promise<void> {
    const server = await serve(handler, {
      host: HOST,
      port: 0,
      hostname: HOSTNAME,
      ...serveOptions,
    });
    const clients: SmtpClient[] = [];
    const connect = async (): Promise<SmtpClient> => {
      const client = await SmtpClient.connect(runtime, HOST, server.port);
      clients.push(client);
      return client;
    };
    const greeted = async (): Promise<SmtpClient> => {
      const client = await connect();
      match(await client.reply(), GREETING, "greeting");
      return client;
    };
    try {
      await body({ server, connect, greeted });
    } finally {
      for (const client of clients) client.close();
      await within(server.close({ timeout: 500 }), 10_000, "server.close() after the case");
    }
  }

  /** Opens a transaction up to the 354 reply. */
  async function openData(client: SmtpClient): Promise<void> {
    match(await client.command("EHLO client.compliance.test"), /^250[- ]/, "EHLO");
    match(await client.command("MAIL FROM:<alice@example.org>"), /^250 /, "MAIL");
    match(await client.command("RCPT TO:<bob@example.net>"), /^250 /, "RCPT");
    match(await client.command("DATA"), /^354 /, "DATA");
  }

  const cases: ComplianceCase[] = [];
  const add = (name: string, timeout: number, run: () => Promise<void>): void => {
    const skip = options.skip?.[name];
    cases.push({ name, timeout, run, ...(skip === undefined ? {} : { skip }) });
  };

  return { runtime, node, python, cases, pem, withServer, openData, add };
}
