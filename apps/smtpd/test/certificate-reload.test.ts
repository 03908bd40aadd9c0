// The CLI reloads its certificate when the files change (replaced by rename through symlinks, as
// certbot does) and on SIGHUP; a bad pair keeps the old one. Real handshakes with Node's tls client.
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ParseResult, parseArgs } from "../src/options.js";
import { freePort, killAll, makeTlsFiles, startCli } from "./cli-helpers.js";

/** A plain SMTP connection that reads whole replies, and can turn into TLS after STARTTLS. */
class Client {
  #buffer = "";
  #wake: (() => void) | null = null;
  #socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#listen(socket);
  }

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => resolve(new Client(socket)));
      socket.once("error", reject);
    });
  }

  #listen(socket: net.Socket): void {
    socket.setEncoding("latin1").on("data", (chunk: string) => {
      this.#buffer += chunk;
      this.#wake?.();
    });
  }

  async reply(): Promise<string> {
    for (;;) {
      const match = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(this.#buffer);
      if (match) {
        const end = match.index + match[0].length;
        const reply = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end);
        return reply;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  async command(line: string): Promise<string> {
    this.#socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** STARTTLS; resolves with the certificate the server presented. */
  async startTls(options: tls.ConnectionOptions = {}): Promise<tls.PeerCertificate> {
    await this.command("EHLO client.test");
    expect(await this.command("STARTTLS")).toMatch(/^220 /);
    this.#socket.removeAllListeners("data");
    const secure = tls.connect({ socket: this.#socket, rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve).once("error", reject);
    });
    this.#socket = secure;
    this.#listen(secure);
    return secure.getPeerCertificate();
  }

  close(): void {
    this.#socket.destroy();
  }
}

const fingerprintOf = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

describe("smtpkit watches --tlscert/--tlskey", () => {
  let dir: string;
  let first: ReturnType<typeof makeTlsFiles>;
  let second: ReturnType<typeof makeTlsFiles>;
  const clients: Client[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "smtpkit-reload-"));
    for (const name of ["one", "two", "live"]) mkdirSync(join(dir, name));
    first = makeTlsFiles(join(dir, "one"));
    second = makeTlsFiles(join(dir, "two"));
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
    killAll();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Points live/NAME at TARGET by renaming a new symlink over it (what certbot does). */
  const point = (name: string, target: string) => {
    const link = join(dir, "live", name);
    symlinkSync(target, `${link}.new`);
    renameSync(`${link}.new`, link);
  };
  const open = async (port: number) => {
    const client = await Client.open(port);
    clients.push(client);
    expect(await client.reply()).toMatch(/^220 /);
    return client;
  };

  it("files replaced by rename: new handshakes get the new certificate, a held session finishes; a bad pair keeps it; SIGHUP reloads", async () => {
    point("cert.pem", first.cert);
    point("key.pem", first.key);
    const live = { cert: join(dir, "live", "cert.pem"), key: join(dir, "live", "key.pem") };
    const port = await freePort();
    const cli = await startCli(
      ["-n", "-c", "Sink", "-l", `127.0.0.1:${port}`, "--tlscert", live.cert, "--tlskey", live.key],
      { cwd: dir },
    );

    const held = await open(port);
    expect((await held.startTls()).fingerprint256).toBe(fingerprintOf(first.cert));
    expect(await held.command("EHLO held.test")).toMatch(/^250[- ]/);
    expect(await held.command("MAIL FROM:<alice@example.org>")).toMatch(/^250 /);

    point("key.pem", second.key);
    point("cert.pem", second.cert);
    const reloaded =
      /smtpkit: certificate reloaded \(files changed\) from .*cert\.pem: subject CN=localhost, expires \d{4}-/;
    await until(
      () => reloaded.test(cli.stderr()),
      () => cli.stderr(),
    );
    const after = await open(port);
    expect((await after.startTls()).fingerprint256).toBe(fingerprintOf(second.cert));

    expect(await held.command("RCPT TO:<bob@example.net>")).toMatch(/^250 /);
    expect(await held.command("DATA")).toMatch(/^354 /);
    expect(await held.command("Subject: held\r\n\r\nacross the reload\r\n.")).toMatch(/^250 /);
    expect(await held.command("QUIT")).toMatch(/^221 /);

    // A key that belongs to another certificate: logged, and the server keeps the second pair.
    point("key.pem", first.otherKey);
    const refused =
      /smtpkit: error: certificate .*cert\.pem not reloaded \(files changed\), keeping the current one: .*key does not match certificate/;
    await until(
      () => refused.test(cli.stderr()),
      () => cli.stderr(),
    );
    const still = await open(port);
    expect((await still.startTls()).fingerprint256).toBe(fingerprintOf(second.cert));

    point("key.pem", second.key);
    cli.child.kill("SIGHUP");
    await until(
      () => /certificate reloaded \(SIGHUP\)/.test(cli.stderr()),
      () => cli.stderr(),
    );
    expect(cli.child.exitCode).toBeNull(); // SIGHUP reloads, it does not end the server
    expect(await cli.stop()).toBe(0);
  }, 120_000);

  it("--tls-min-version TLSv1.3 refuses a TLS 1.2 client, before and after a reload", async () => {
    point("cert.pem", first.cert);
    point("key.pem", first.key);
    const live = { cert: join(dir, "live", "cert.pem"), key: join(dir, "live", "key.pem") };
    const port = await freePort();
    const cli = await startCli(
      [
        "-n",
        "-c",
        "Sink",
        "-l",
        `127.0.0.1:${port}`,
        "--tlscert",
        live.cert,
        "--tlskey",
        live.key,
        "--tls-min-version",
        "TLSv1.3",
      ],
      { cwd: dir },
    );
    const tls12 = { maxVersion: "TLSv1.2" } as const;
    await expect((await open(port)).startTls(tls12)).rejects.toThrow(/version|alert/i);
    point("cert.pem", second.cert);
    point("key.pem", second.key);
    await until(
      () => /certificate reloaded/.test(cli.stderr()),
      () => cli.stderr(),
    );
    await expect((await open(port)).startTls(tls12)).rejects.toThrow(/version|alert/i);
    const modern = await (await open(port)).startTls();
    expect(modern.fingerprint256).toBe(fingerprintOf(second.cert));
    expect(await cli.stop()).toBe(0);
  }, 120_000);
});

describe("--tls-min-version and --tls-ciphers", () => {
  const env = { version: "1.2.3", exists: () => true };
  const parse = (...argv: string[]): ParseResult => parseArgs(argv, env);
  const withTls = ["--tlscert", "c.pem", "--tlskey", "k.pem"];

  it("are parsed for STARTTLS and SMTPS", () => {
    const result = parse(
      ...withTls,
      "--tls-min-version",
      "TLSv1.3",
      "--tls-ciphers",
      "ECDHE+AESGCM",
    );
    expect(result).toMatchObject({
      kind: "run",
      options: { tlsSettings: { minVersion: "TLSv1.3", ciphers: "ECDHE+AESGCM" } },
    });
  });

  it("refuse other versions, and need a certificate", () => {
    expect(parse(...withTls, "--tls-min-version", "TLSv1.1")).toMatchObject({
      kind: "exit",
      code: 2,
    });
    const alone = parse("--tls-ciphers", "ECDHE+AESGCM");
    expect(alone).toMatchObject({ kind: "exit", code: 2 });
    expect(alone.kind === "exit" && alone.stderr).toMatch(
      /--tls-ciphers: needs --tlscert or --smtpscert/,
    );
  });
});

async function until(check: () => boolean, got: () => string, timeout = 30_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out; stderr: ${got()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
