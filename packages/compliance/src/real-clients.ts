import { ComplianceError } from "./assert.js";
import type { ComplianceRuntime, PemKeyPair } from "./types.js";

/** The client scripts shipped next to `dist/` (and `src/`). */
function clientScript(name: string): string {
  return decodeURIComponent(new URL(`../clients/${name}`, import.meta.url).pathname);
}

export interface NodemailerJob {
  readonly host: string;
  readonly port: number;
  readonly secure?: boolean;
  readonly requireTLS?: boolean;
  readonly ignoreTLS?: boolean;
  readonly lmtp?: boolean;
  /** PEM the server certificate is verified against (for the name "localhost"). */
  readonly ca?: string;
  readonly auth?: { readonly user: string; readonly pass: string };
  readonly authMethod?: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly subject: string;
  readonly text: string;
}

export interface NodemailerResult {
  readonly ok: boolean;
  readonly accepted?: string[];
  readonly rejected?: string[];
  readonly response?: string;
  readonly error?: {
    readonly message: string;
    readonly code: string | null;
    readonly responseCode: number | null;
    readonly response: string | null;
  };
}

export interface SmtplibJob {
  readonly host: string;
  readonly port: number;
  readonly mode: "plain" | "starttls" | "smtps";
  readonly ca?: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly message: string;
}

export interface SmtplibResult {
  readonly ok: boolean;
  readonly refused?: Record<string, unknown>;
  readonly tls?: string | null;
  readonly error?: string;
}

async function runJson<T>(
  runtime: ComplianceRuntime,
  command: string,
  args: readonly string[],
): Promise<T> {
  const result = await runtime.exec(command, args);
  const line = result.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new ComplianceError(
      `${command} exited ${result.code} without a result:\n${result.stdout}\n${result.stderr}`,
    );
  }
}

/** Sends one message with Nodemailer, in a Node child process. */
export function nodemailer(
  runtime: ComplianceRuntime,
  node: string,
  job: NodemailerJob,
): Promise<NodemailerResult> {
  return runJson(runtime, node, [clientScript("nodemailer-client.mjs"), JSON.stringify(job)]);
}

/** Sends one message with Python's smtplib, in a child process. */
export function smtplib(
  runtime: ComplianceRuntime,
  python: string,
  job: SmtplibJob,
): Promise<SmtplibResult> {
  return runJson(runtime, python, [clientScript("smtplib-client.py"), JSON.stringify(job)]);
}

/**
 * A throwaway self-signed certificate for "localhost" and 127.0.0.1 (an EC P-256 key), made by
 * openssl. It is an end-entity certificate (CA:FALSE), so every client can trust it directly:
 * rustls (Deno) refuses a CA certificate used as a server certificate.
 */
export async function makeCertificate(
  runtime: ComplianceRuntime,
  commonName = "localhost",
): Promise<PemKeyPair> {
  const names = commonName === "localhost" ? "" : `,DNS:${commonName}`;
  const result = await runtime.exec("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    "-", // the key, then the certificate (no -out), both on standard output
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    `subjectAltName=DNS:localhost,IP:127.0.0.1${names}`,
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "keyUsage=critical,digitalSignature",
    "-addext",
    "extendedKeyUsage=serverAuth",
  ]);
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(result.stdout);
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(result.stdout);
  if (!key || !cert) {
    throw new ComplianceError(`openssl failed (${result.code}): ${result.stderr}`);
  }
  return { key: key[0], cert: cert[0] };
}

/**
 * The common name of the certificate the server presents, as openssl s_client sees it: after
 * STARTTLS (`starttls`) or from the first byte, asking for `servername` (none: no SNI at all).
 */
export async function presentedCertificate(
  runtime: ComplianceRuntime,
  port: number,
  options: {
    readonly starttls: boolean;
    readonly servername?: string;
    /** More s_client arguments (`-tls1_2`). */
    readonly args?: readonly string[];
  },
): Promise<string> {
  const result = await runtime.exec("openssl", [
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    ...(options.starttls ? ["-starttls", "smtp"] : []),
    ...(options.servername === undefined ? ["-noservername"] : ["-servername", options.servername]),
    ...(options.args ?? []),
  ]);
  const subject = /^subject=.*?CN\s*=\s*([^,/\n]+)/m.exec(result.stdout);
  if (!subject?.[1]) {
    throw new ComplianceError(
      `openssl s_client saw no certificate (${result.code}): ${result.stderr}`,
    );
  }
  return subject[1].trim();
}
