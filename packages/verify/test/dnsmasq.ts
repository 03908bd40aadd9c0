// A real DNS server for the tests: dnsmasq on 127.0.0.1, a free port, answering only the records
// a test gives it (NXDOMAIN for every other name, nothing forwarded anywhere).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";

/** Why dnsmasq cannot run here, or false; in CI its absence fails the tests instead. */
export const dnsmasqMissing: string | false = (() => {
  const found = spawnSync("dnsmasq", ["--version"], { encoding: "utf8" });
  if (found.status === 0) return false;
  if (process.env.CI) throw new Error("dnsmasq is required in CI (apt-get install dnsmasq)");
  return "dnsmasq not installed";
})();

/** A suite's name, with the reason when it is skipped. */
export const withDnsmasq = (name: string) =>
  dnsmasqMissing ? `${name} [skip: ${dnsmasqMissing}]` : name;

export interface Zone {
  /** name → TXT value (split into 255-octet strings as needed). */
  readonly txt?: Readonly<Record<string, string>>;
  /** reverse name (`1.0.0.127.in-addr.arpa`) → host name. */
  readonly ptr?: Readonly<Record<string, string>>;
  /** host name → IPv4 address. */
  readonly a?: Readonly<Record<string, string>>;
  /** More dnsmasq flags (e.g. `--server=/domain/127.0.0.1#1`: a domain whose DNS is down). */
  readonly args?: readonly string[];
}

/** A UDP port that was free a moment ago on 127.0.0.1. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function zoneArgs(zone: Zone): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(zone.txt ?? {})) {
    // dnsmasq: commas separate the character-strings of one TXT record.
    const strings = value.match(/.{1,250}/g) ?? [""];
    args.push(`--txt-record=${name},${strings.join(",")}`);
  }
  for (const [name, host] of Object.entries(zone.ptr ?? {}))
    args.push(`--ptr-record=${name},${host}`);
  for (const [host, address] of Object.entries(zone.a ?? {}))
    args.push(`--host-record=${host},${address}`);
  return [...args, ...(zone.args ?? [])];
}

export class Dnsmasq {
  port = 0;
  readonly #nonce = randomBytes(8).toString("hex");
  #child: ChildProcess | null = null;

  /** `127.0.0.1:PORT`, for `dnsServer`. */
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(zone: Zone): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      this.port = await freeUdpPort();
      const args = [
        `--port=${this.port}`,
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--pid-file=",
        // Every name is local: unknown ones get NXDOMAIN, never REFUSED or a forward.
        "--local=/#/",
        // Answers must not outlive a test's change of records.
        "--cache-size=0",
        // Ours, not another test's dnsmasq that got the port first.
        `--txt-record=ready.test.invalid,${this.#nonce}`,
        ...(process.getuid?.() === 0 ? ["--user=root"] : []),
        ...zoneArgs(zone),
      ];
      const child = spawn("dnsmasq", args, { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr?.on("data", (data) => {
        stderr += data;
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      this.#child = child;
      const ready = await Promise.race([this.#ready(), exited.then(() => false)]);
      if (ready) return;
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      this.#child = null;
      if (attempt >= 2) throw new Error(`dnsmasq did not start: ${stderr.trim()}`);
    }
  }

  async #ready(): Promise<boolean> {
    const resolver = new Resolver({ timeout: 200, tries: 1 });
    resolver.setServers([this.server]);
    for (let i = 0; i < 50; i++) {
      try {
        const answer = await resolver.resolveTxt("ready.test.invalid");
        if (answer[0]?.join("") === this.#nonce) return true;
        return false;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    return false;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
}

/** A UDP "DNS server" that reads every query and never answers. */
export async function silentDnsServer(): Promise<{ server: string; close(): Promise<void> }> {
  const socket = createSocket("udp4");
  socket.on("message", () => undefined);
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    server: `127.0.0.1:${socket.address().port}`,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
