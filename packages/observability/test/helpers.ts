// Real clients and servers for the observability tests: serve() on a free port, Nodemailer,
// python3's smtplib and swaks as child processes.
import { execFile, execFileSync } from "node:child_process";
import type { Handler } from "@smtpkit/core/server";
import { type SmtpServer, serve } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { afterEach } from "vitest";

export function hasTool(name: string, probe: string[] = ["--version"]): boolean {
  try {
    execFileSync(name, probe, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** A test needing `tool` is skipped locally when it is missing; under CI it fails instead. */
export function needs(tool: string, present: boolean): { skip: boolean; suffix: string } {
  const skip = !present && !process.env.CI;
  return { skip, suffix: skip ? ` [skip: ${tool} not installed]` : "" };
}

/** Servers started by a test file, closed after each test. */
export function servedForEachTest() {
  const servers: SmtpServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  });
  return async (handler: Handler, options: Parameters<typeof serve>[1] = {}) => {
    const server = await serve(handler, {
      host: "127.0.0.1",
      port: 0,
      hostname: "mx.test",
      ...options,
    });
    servers.push(server);
    return server;
  };
}

/** Accepts alice:wonderland; PLAIN and LOGIN without TLS (the tests run on 127.0.0.1). */
export const AUTH_OPTIONS = {
  authRequireTls: false,
  authenticator: (
    _server: unknown,
    _session: unknown,
    _envelope: unknown,
    _mechanism: string,
    data: unknown,
  ) => {
    const { login, password } = data as { login: Uint8Array; password: Uint8Array };
    const text = new TextDecoder();
    const success = text.decode(login) === "alice" && text.decode(password) === "wonderland";
    return { success, authData: success ? "alice" : null };
  },
} as const;

/** One message with Nodemailer (a connection of its own); resolves with the error, if any. */
export async function sendWithNodemailer(
  port: number,
  message: { subject: string; auth?: { user: string; pass: string; method: "PLAIN" | "LOGIN" } },
): Promise<Error | null> {
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    ...(message.auth && {
      auth: { user: message.auth.user, pass: message.auth.pass },
      authMethod: message.auth.method,
    }),
  });
  try {
    await transport.sendMail({
      from: "alice@example.com",
      to: "bob@example.org",
      subject: message.subject,
      text: "Hello",
    });
    return null;
  } catch (error) {
    return error as Error;
  } finally {
    transport.close();
  }
}

/** Runs a python3 script with smtplib against `port` (given as `PORT`); resolves with its output. */
export function smtplib(port: number, script: string): Promise<string> {
  const program = `import smtplib, sys\nPORT = ${port}\n${script}`;
  return new Promise((resolve, reject) => {
    execFile("python3", ["-c", program], { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`smtplib: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Runs swaks against `port`; resolves with its exit code and output. */
export function swaks(port: number, ...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      "swaks",
      ["--server", `127.0.0.1:${port}`, "--timeout", "20", ...args],
      { timeout: 30_000 },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
    );
  });
}

/** `GET http://127.0.0.1:port/path` → status and body. */
export async function scrape(
  port: number,
  path: string,
): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

/** Prometheus text → `name{labels}` → value (labels as printed, sorted as prom-client prints them). */
export function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}
