/**
 * Differential test: every dialog in `test/dialogs/` is replayed line by line over raw sockets
 * against aiosmtpd (Debian's python3-aiosmtpd, the baseline of shared/spec/aiosmtpd.md) and
 * against smtpkit configured the same way, and the replies (codes and texts) are compared.
 *
 * A difference fails the test unless `intended-differences.ts` lists it (with the beyond.md or
 * README row that justifies it) or lists it as a known smtpkit bug; an entry that no longer
 * occurs fails too, so the table stays true. A missing aiosmtpd is a failure, not a skip.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Authenticator, Handler } from "@smtpkit/core/server";
import { type ServeOptions, type SmtpServer, serve } from "@smtpkit/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Dialog, type Exchange, loadDialog, replay } from "./dialog.js";
import {
  type CertFiles,
  type Daemon,
  freePort,
  HERE,
  killChildren,
  LOCALHOST,
  listensOn,
  makeCert,
  RawClient,
  requireBuilt,
  run,
  SYSTEM_PYTHON,
  sleep,
  startDaemon,
  waitForPort,
} from "./helpers.js";
import {
  type Difference,
  INTENDED_DIFFERENCES,
  REPORTED_DIFFERENCES,
  type ReplyPattern,
} from "./intended-differences.js";

const DIALOGS = join(HERE, "dialogs");

/** How both servers are configured for a dialog's `@profile`. */
interface Profile {
  /** aiosmtpd: CLI arguments (after `-n -c aiosmtpd.handlers.Sink -l HOST:PORT`), or script kwargs. */
  readonly aiosmtpd: { cli: string[] } | { script: Record<string, unknown> };
  /** smtpkit: `serve()` options on top of the common ones. */
  readonly smtpkit: ServeOptions;
  /** smtpkit's handler (default `{}`, aiosmtpd's Sink: no hooks). */
  readonly handler?: Handler;
  /** The client connects with TLS (implicit TLS). */
  readonly tls?: boolean;
  /** Remove RFC 3463 codes from both sides' replies before comparing (LMTP forces them on). */
  readonly stripEnhanced?: boolean;
  readonly extraRepliesAfterData?: boolean;
}

const CREDENTIALS = "user:pass";
const authenticator: Authenticator = (_s, _ss, _e, _mechanism, data) => {
  const { login, password } = data as { login: Uint8Array; password: Uint8Array };
  const ok = `${Buffer.from(login)}:${Buffer.from(password)}` === CREDENTIALS;
  return { success: ok };
};

function profiles(cert: CertFiles): Record<string, Profile> {
  const tls = { key: cert.key, cert: cert.cert };
  return {
    // aiosmtpd's CLI as is: no size limit (no -s), SMTPUTF8 off, no TLS.
    cli: { aiosmtpd: { cli: [] }, smtpkit: { dataSizeLimit: null } },
    // -s 1000 -u: a size limit and SMTPUTF8.
    "cli-size": {
      aiosmtpd: { cli: ["-s", "1000", "-u"] },
      smtpkit: { dataSizeLimit: 1000, enableSmtpUtf8: true },
    },
    // -s 0: no limit and no SIZE line (smtpkit: dataSizeLimit 0).
    "cli-size0": { aiosmtpd: { cli: ["-s", "0"] }, smtpkit: { dataSizeLimit: 0 } },
    // aiosmtpd's CLI without -s against smtpkit's default limit (what smtpkit's CLI uses).
    "cli-default-size": { aiosmtpd: { cli: [] }, smtpkit: {} },
    // --tlscert/--tlskey: STARTTLS offered and required.
    tls: {
      aiosmtpd: { cli: ["--tlscert", cert.certPath, "--tlskey", cert.keyPath] },
      smtpkit: { dataSizeLimit: null, tls, requireStartTls: true },
    },
    // --no-requiretls: STARTTLS offered, not required.
    "tls-optional": {
      aiosmtpd: { cli: ["--tlscert", cert.certPath, "--tlskey", cert.keyPath, "--no-requiretls"] },
      smtpkit: { dataSizeLimit: null, tls, requireStartTls: false },
    },
    // --smtpscert/--smtpskey: implicit TLS.
    smtps: {
      aiosmtpd: { cli: ["--smtpscert", cert.certPath, "--smtpskey", cert.keyPath] },
      smtpkit: { dataSizeLimit: null, smtps: tls },
      tls: true,
    },
    // AUTH in clear with an authenticator that accepts user:pass.
    "auth-clear": {
      aiosmtpd: {
        script: { auth_require_tls: false, authenticator: CREDENTIALS, data_size_limit: None() },
      },
      smtpkit: { dataSizeLimit: null, authRequireTls: false, authenticator },
    },
    "auth-required": {
      aiosmtpd: {
        script: {
          auth_require_tls: false,
          auth_required: true,
          authenticator: CREDENTIALS,
          data_size_limit: None(),
        },
      },
      smtpkit: { dataSizeLimit: null, authRequireTls: false, authRequired: true, authenticator },
    },
    timeout: {
      aiosmtpd: { script: { timeout: 1, data_size_limit: None() } },
      smtpkit: { dataSizeLimit: null, timeout: 1 },
    },
    "call-limit": {
      aiosmtpd: { script: { command_call_limit: 3, data_size_limit: None() } },
      smtpkit: { dataSizeLimit: null, commandCallLimit: 3 },
    },
    "decode-data": {
      aiosmtpd: { script: { decode_data: true, data_size_limit: None() } },
      smtpkit: { dataSizeLimit: null, decodeData: true },
    },
    // The same with a handler that has handle_DATA (returning "250 OK") on both sides.
    "decode-data-handler": {
      aiosmtpd: { script: { decode_data: true, handler: "data", data_size_limit: None() } },
      smtpkit: { dataSizeLimit: null, decodeData: true },
      handler: { handleDATA: () => "250 OK" },
    },
    lmtp: {
      aiosmtpd: { script: { lmtp: true, data_size_limit: None() } },
      smtpkit: { dataSizeLimit: null, lmtp: true },
      stripEnhanced: true,
      extraRepliesAfterData: true,
    },
    "lmtp-tls": {
      aiosmtpd: {
        script: {
          lmtp: true,
          tls: [cert.certPath, cert.keyPath],
          require_starttls: true,
          data_size_limit: None(),
        },
      },
      smtpkit: { dataSizeLimit: null, lmtp: true, tls, requireStartTls: true },
      stripEnhanced: true,
    },
  };
}

/** JSON null (Python None) for the script's kwargs. */
function None(): null {
  return null;
}

interface Running {
  readonly aiosmtpdPort: number;
  readonly daemon: Daemon;
  readonly smtpkit: SmtpServer;
}

let cert: CertFiles;
let all: Record<string, Profile>;
let hostname = "";
let ident = "";
const running = new Map<string, Running>();
const matched = new Set<Difference>();
let dialogsRun = 0;

const dialogFiles = readdirSync(DIALOGS)
  .filter((file) => file.endsWith(".txt"))
  .sort();
const dialogs: Dialog[] = dialogFiles.map((file) => loadDialog(join(DIALOGS, file), file));

async function aiosmtpdAvailable(): Promise<void> {
  if (!existsSync(SYSTEM_PYTHON)) {
    throw new Error(`${SYSTEM_PYTHON} is missing: install Debian's python3 and python3-aiosmtpd`);
  }
  const probe = await run(SYSTEM_PYTHON, ["-c", "import aiosmtpd; print(aiosmtpd.__version__)"]);
  if (probe.code !== 0) {
    throw new Error(
      `the differential test needs aiosmtpd in ${SYSTEM_PYTHON} (Debian package python3-aiosmtpd): ${probe.stderr.trim()}`,
    );
  }
}

async function startAiosmtpd(profile: Profile): Promise<{ port: number; daemon: Daemon }> {
  // A picked port can be taken by another server before Python has bound it: then try another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const daemon =
      "cli" in profile.aiosmtpd
        ? startDaemon(SYSTEM_PYTHON, [
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Sink",
            "-l",
            `${LOCALHOST}:${port}`,
            ...profile.aiosmtpd.cli,
          ])
        : startDaemon(SYSTEM_PYTHON, [
            join(HERE, "aiosmtpd_server.py"),
            String(port),
            JSON.stringify({ hostname, ident, ...profile.aiosmtpd.script }),
          ]);
    const pid = daemon.child.pid ?? -1;
    const deadline = Date.now() + 15_000;
    let exited = false;
    void daemon.exited.then(() => {
      exited = true;
    });
    while (!exited && !listensOn(pid, port) && Date.now() < deadline) await sleep(50);
    if (!exited && listensOn(pid, port)) {
      await waitForPort(port);
      return { port, daemon };
    }
    await daemon.stop().catch(() => undefined);
    if (attempt === 3) throw new Error(`aiosmtpd did not listen on ${port}: ${daemon.stderr()}`);
  }
}

async function start(name: string): Promise<Running> {
  const existing = running.get(name);
  if (existing) return existing;
  const profile = all[name];
  if (!profile) throw new Error(`unknown profile ${name}`);
  const { port, daemon } = await startAiosmtpd(profile);
  const smtpkit = await serve(profile.handler ?? {}, {
    host: LOCALHOST,
    port: 0,
    hostname,
    ident,
    enableSmtpUtf8: false,
    extensions: { enhancedStatusCodes: false },
    closeTimeout: 1_000,
    ...profile.smtpkit,
  });
  const started = { aiosmtpdPort: port, daemon, smtpkit };
  running.set(name, started);
  return started;
}

beforeAll(async () => {
  requireBuilt();
  await aiosmtpdAvailable();
  cert = makeCert();
  all = profiles(cert);
  // aiosmtpd's CLI greets with `220 {getfqdn()} Python SMTP {version}`: smtpkit gets the same.
  const probe = await startAiosmtpd(all.cli as Profile);
  const client = await RawClient.connect(probe.port);
  const greeting = (await client.reply())?.[0] ?? "";
  client.close();
  await probe.daemon.stop("SIGINT");
  const match = /^220 (\S+) (.+)$/.exec(greeting);
  if (!match) throw new Error(`unexpected aiosmtpd greeting: ${greeting}`);
  hostname = match[1] ?? "";
  ident = match[2] ?? "";
});

afterAll(async () => {
  for (const server of running.values()) {
    await server.smtpkit.close();
    await server.daemon.stop("SIGINT");
  }
  cert?.cleanup();
  killChildren();
});

// ---------------------------------------------------------------------------------------------

const ENHANCED = /^(\d{3}[ -])[245]\.\d{1,3}\.\d{1,3} /gm;

function normalise(reply: string, profile: Profile): string {
  if (!profile.stripEnhanced) return reply;
  return reply
    .split(" | ")
    .map((one) => one.replace(ENHANCED, "$1"))
    .join(" | ");
}

function matches(pattern: ReplyPattern, actual: string): boolean {
  if (typeof pattern === "string") return pattern.replaceAll("{host}", hostname) === actual;
  return pattern.test(actual);
}

function smtpkitMatches(entry: Difference, theirs: string, ours: string): boolean {
  if (typeof entry.smtpkit === "function") return entry.smtpkit(theirs) === ours;
  return matches(entry.smtpkit, ours);
}

function entryApplies(entry: Difference, dialog: Dialog, exchange: Exchange): boolean {
  if (entry.dialog !== "*" && entry.dialog !== dialog.name) return false;
  if (entry.profile !== undefined && entry.profile !== dialog.profile) return false;
  if (typeof entry.line === "number") return entry.line === exchange.lineNo;
  return entry.line.test(exchange.client);
}

interface Mismatch {
  lineNo: number;
  client: string;
  aiosmtpd: string;
  smtpkit: string;
}

const show = (m: Mismatch) =>
  `  line ${m.lineNo}: ${JSON.stringify(m.client)}\n    aiosmtpd: ${JSON.stringify(m.aiosmtpd)}\n    smtpkit:  ${JSON.stringify(m.smtpkit)}`;

describe("differential: smtpkit vs aiosmtpd", () => {
  it("has a corpus", () => {
    expect(dialogs.length).toBeGreaterThan(20);
    for (const dialog of dialogs) {
      expect(Object.keys(profiles({} as CertFiles)), dialog.name).toContain(dialog.profile);
      expect(dialog.description, `${dialog.name} needs a description comment`).not.toBe("");
    }
  });

  for (const dialog of dialogs) {
    it(`${dialog.name} (${dialog.profile})`, async () => {
      const profile = all[dialog.profile] as Profile;
      const servers = await start(dialog.profile);
      const options = {
        tls: profile.tls ?? false,
        extraRepliesAfterData: profile.extraRepliesAfterData ?? false,
      };
      const [theirs, ours] = await Promise.all([
        replay(dialog, { port: servers.aiosmtpdPort, ...options }),
        replay(dialog, { port: servers.smtpkit.port, ...options }),
      ]);
      expect(ours.map((e) => e.lineNo)).toEqual(theirs.map((e) => e.lineNo));
      if (process.env.INTEROP_DUMP) {
        // INTEROP_DUMP=1 prints both transcripts side by side.
        const rows = theirs.map((their, i) => {
          const our = ours[i]?.reply ?? "";
          const same = normalise(their.reply, profile) === normalise(our, profile);
          return `${same ? " " : "≠"} ${String(their.lineNo).padStart(3)} ${JSON.stringify(their.client).slice(0, 60)}\n      aiosmtpd ${JSON.stringify(their.reply)}${same ? "" : `\n      smtpkit  ${JSON.stringify(our)}`}`;
        });
        console.log(`--- ${dialog.name} (${dialog.profile})\n${rows.join("\n")}`);
      }
      const unexpected: Mismatch[] = [];
      for (const [index, their] of theirs.entries()) {
        const our = ours[index] as Exchange;
        const a = normalise(their.reply, profile);
        const b = normalise(our.reply, profile);
        if (a === b) continue;
        const entry = [...INTENDED_DIFFERENCES, ...REPORTED_DIFFERENCES].find(
          (e) =>
            entryApplies(e, dialog, their) && matches(e.aiosmtpd, a) && smtpkitMatches(e, a, b),
        );
        if (entry) matched.add(entry);
        else
          unexpected.push({ lineNo: their.lineNo, client: their.client, aiosmtpd: a, smtpkit: b });
      }
      dialogsRun++;
      if (unexpected.length > 0) {
        throw new Error(
          `${unexpected.length} difference(s) not in intended-differences.ts:\n${unexpected.map(show).join("\n")}`,
        );
      }
    });
  }

  it("every listed difference still occurs", () => {
    // Only meaningful when the whole corpus ran to the comparison (not under a -t filter, and a
    // dialog that crashed has already failed on its own).
    if (dialogsRun < dialogs.length) return;
    const stale = [...INTENDED_DIFFERENCES, ...REPORTED_DIFFERENCES].filter(
      (entry) => !matched.has(entry),
    );
    expect(
      stale.map((e) => `${e.dialog}:${String(e.line)} (${e.reason.slice(0, 60)}…)`),
      "entries in intended-differences.ts that no longer occur: fix or remove them",
    ).toEqual([]);
  });
});
