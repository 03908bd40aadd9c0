import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliOptions,
  DEFAULT_SIZE,
  describeServer,
  logLevel,
  type ParseResult,
  parseArgs,
  parseListen,
  toServeOptions,
} from "../src/options.js";
import { makeTlsFiles } from "./cli-helpers.js";

const FILES = new Set(["cert.pem", "key.pem"]);
const env = { version: "1.2.3", exists: (path: string) => FILES.has(path) };

function parse(...argv: string[]): ParseResult {
  return parseArgs(argv, env);
}

function ok(...argv: string[]): CliOptions {
  const result = parse(...argv);
  if (result.kind !== "run") throw new Error(`expected run, got ${JSON.stringify(result)}`);
  return result.options;
}

/** A usage error: exit 2 and exactly one `smtpkit: error: ...` line on stderr. */
function usageError(...argv: string[]): string {
  const result = parse(...argv);
  expect(result).toMatchObject({ kind: "exit", code: 2, stdout: "" });
  if (result.kind !== "exit") throw new Error("unreachable");
  expect(result.stderr).toMatch(/^smtpkit: error: [^\n]+\n$/);
  return result.stderr.replace(/^smtpkit: error: /, "").trimEnd();
}

describe("defaults (aiosmtpd's test_defaults, with smtpkit's true SIZE default)", () => {
  it("parses an empty command line", () => {
    expect(ok()).toEqual({
      setuid: true,
      handler: { name: "Debugging", args: [] },
      size: DEFAULT_SIZE,
      smtputf8: false,
      debug: 0,
      host: "localhost",
      port: 8025,
      path: null,
      tls: null,
      requireTls: true,
      smtps: null,
      lmtp: false,
      hostname: null,
      ident: null,
      timeout: null,
      dataTimeout: null,
      minDataRate: null,
      proxyProtocol: null,
      proxyTrust: [],
      proxyUntrusted: "serve",
      xclient: [],
      xforward: [],
      commandCallLimit: null,
      maxConnections: null,
      workers: 1,
      logFormat: "text",
      metrics: null,
      auth: { file: null, mechanisms: null, required: false, requireTls: true },
      extensions: {},
      policy: {
        maxConnectionsPerIp: null,
        connectionRate: null,
        messageRate: null,
        recipientRate: null,
        authFailures: null,
        redis: null,
      },
      verify: { checks: null, policy: "tag", dnsServer: null },
    });
    expect(DEFAULT_SIZE).toBe(33554432);
  });
});

describe("-v / --version / -h", () => {
  it.each(["-v", "--version"])("%s prints `smtpkit <version>` and exits 0", (flag) => {
    expect(parse(flag)).toEqual({ kind: "exit", code: 0, stdout: "smtpkit 1.2.3\n", stderr: "" });
  });
  it("--help exits 0 and states the real SIZE default", () => {
    const result = parse("--help");
    expect(result).toMatchObject({ kind: "exit", code: 0, stderr: "" });
    if (result.kind !== "exit") return;
    expect(result.stdout).toMatch(/^Usage: smtpkit \[options\] \[CLASSARGS\.\.\.\]/);
    expect(result.stdout).toContain("(default: 33554432)");
    for (const flag of [
      "--nosetuid",
      "--class",
      "--listen",
      "--tlscert",
      "--no-requiretls",
      "--smtpskey",
      "--lmtp",
    ]) {
      expect(result.stdout).toContain(flag);
    }
  });

  it("--help lists every built-in handler with its arguments, and the -l forms", () => {
    const result = parse("--help");
    if (result.kind !== "exit") throw new Error("expected exit");
    const help = result.stdout.replace(/\s+/g, " ");
    for (const text of [
      "Handlers (-c NAME [CLASSARGS...]):",
      "Debugging [stdout|stderr] print each message",
      "Sink accept every message and discard it",
      "Mailbox DIR deliver into the Maildir DIR",
      "Proxy HOST PORT [MODE] relay every message to the SMTP server HOST:PORT; MODE transparent",
      "Message, AsyncMessage abstract: subclass them in a module",
      "./MODULE.js [ARGS...]",
      "[::1]:25",
      "[::]:25",
      "Unix socket path",
    ]) {
      expect(help).toContain(text);
    }
  });
});

describe("flags", () => {
  it.each(["-n", "--nosetuid"])("%s turns setuid off", (flag) => {
    expect(ok(flag).setuid).toBe(false);
  });

  it.each([
    [["-c", "Sink"], { name: "Sink", args: [] }],
    [["--class", "./h.js", "a", "b"], { name: "./h.js", args: ["a", "b"] }],
    [["-c", "Debugging", "stderr"], { name: "Debugging", args: ["stderr"] }],
    [["stderr", "-c", "Debugging"], { name: "Debugging", args: ["stderr"] }],
    [["-c", "./h.js", "--", "FOO", "-x"], { name: "./h.js", args: ["FOO", "-x"] }],
    [["-n", "x", "-u", "y"], { name: "Debugging", args: ["x", "y"] }],
  ])("%j → handler %j", (argv, handler) => {
    expect(ok(...argv).handler).toEqual(handler);
  });

  it.each([
    [["-s", "100"], 100],
    [["--size", "0"], 0],
    [["-s", " 1_000 "], 1000],
    [["-s", "+5"], 5],
    [[], 33554432],
  ])("%j → size %d", (argv, size) => {
    expect(ok(...argv).size).toBe(size);
  });

  it.each([
    ["abc", "argument -s/--size: invalid int value: 'abc'"],
    ["1.5", "argument -s/--size: invalid int value: '1.5'"],
    ["-1", "argument -s/--size: must be at least 0"],
  ])("-s %s → %s", (value, message) => {
    expect(usageError("-s", value)).toBe(message);
  });

  it.each(["-u", "--smtputf8"])("%s enables SMTPUTF8", (flag) => {
    expect(ok(flag).smtputf8).toBe(true);
  });

  it.each([
    [[], 0],
    [["-d"], 1],
    [["--debug"], 1],
    [["-dd"], 2],
    [["-d", "-d", "-d"], 3],
    [["-ddd"], 3],
    [["-nd"], 1],
  ])("%j → debug %d", (argv, level) => {
    expect(ok(...argv).debug).toBe(level);
  });

  it("--no-requiretls (test_norequiretls), with the --tlscert it relaxes", () => {
    expect(ok("--tlscert", "cert.pem", "--tlskey", "key.pem", "--no-requiretls").requireTls).toBe(
      false,
    );
  });

  it.each([
    [["--no-requiretls"]],
    [["--no-requiretls", "--smtpscert", "cert.pem", "--smtpskey", "key.pem"]],
  ])("%j without --tlscert is a usage error", (argv) => {
    expect(usageError(...argv)).toBe(
      "argument --no-requiretls: needs --tlscert and --tlskey (it only relaxes STARTTLS)",
    );
  });

  it("a channel-binding mechanism (-PLUS) without TLS is a usage error", () => {
    const withUsers = (...argv: string[]) =>
      parseArgs(["--auth-file", "users", ...argv], {
        exists: (p) => p === "users" || FILES.has(p),
      });
    expect(withUsers("--auth-mechanisms", "SCRAM-SHA-256,SCRAM-SHA-256-PLUS")).toMatchObject({
      code: 2,
      stderr:
        "smtpkit: error: argument --auth-mechanisms: SCRAM-SHA-256-PLUS needs TLS (--tlscert/--tlskey or --smtpscert/--smtpskey)\n",
    });
    const args = ["--auth-mechanisms", "SCRAM-SHA-256-PLUS", "--tlscert", "cert.pem", "--tlskey"];
    expect(withUsers(...args, "key.pem")).toMatchObject({ kind: "run" });
  });

  it.each([["--auth-required"], ["--auth-mechanisms", "PLAIN"], ["--no-auth-require-tls"]])(
    "%s without --auth-file is a usage error",
    (flag, ...rest) => {
      expect(usageError(flag, ...rest)).toBe(
        `argument ${flag}: needs --auth-file (without a users file nobody can log in)`,
      );
    },
  );

  it("smtpkit's extra flags", () => {
    const options = ok(
      "--lmtp",
      "--hostname",
      "mx.example.com",
      "--ident",
      "Test ESMTP",
      "--timeout",
      "2.5",
      "--data-timeout",
      "60",
      "--min-data-rate",
      "0",
      "--proxy-protocol",
      "3",
      "--proxy-trust",
      "10.0.0.0/8,127.0.0.1",
      "::1",
      "--proxy-trust",
      "192.168.0.0/16",
      "--command-call-limit",
      "7",
      "--max-connections",
      "50",
    );
    expect(options).toMatchObject({
      lmtp: true,
      hostname: "mx.example.com",
      ident: "Test ESMTP",
      timeout: 2.5,
      dataTimeout: 60,
      minDataRate: 0,
      proxyProtocol: 3,
      proxyTrust: ["10.0.0.0/8", "127.0.0.1", "::1", "192.168.0.0/16"],
      commandCallLimit: 7,
      maxConnections: 50,
      handler: { name: "Debugging", args: [] },
    });
  });

  it.each([
    [["--timeout", "soon"], "argument --timeout: invalid float value: 'soon'"],
    [["--timeout", "0"], "argument --timeout: must be greater than 0"],
    [["--data-timeout", "0"], "argument --data-timeout: must be greater than 0"],
    [["--min-data-rate", "-5"], "argument --min-data-rate: must be at least 0"],
    [["--min-data-rate", "fast"], "argument --min-data-rate: invalid int value: 'fast'"],
    [["--proxy-protocol", "-1"], "argument --proxy-protocol: invalid float value: '-1'"],
    [["--proxy-trust", "10.0.0.0/8"], "--proxy-trust requires --proxy-protocol"],
    [
      ["--proxy-protocol", "5", "--proxy-untrusted", "refuse"],
      "--proxy-untrusted refuse requires --proxy-trust",
    ],
    [
      ["--proxy-untrusted", "nobody"],
      "option '--proxy-untrusted <WHAT>' argument 'nobody' is invalid. Allowed choices are serve, refuse.",
    ],
    [["--command-call-limit", "0"], "argument --command-call-limit: must be at least 1"],
    [["--max-connections", "many"], "argument --max-connections: invalid int value: 'many'"],
    [["--hostname", "a b"], "argument --hostname: invalid host name: 'a b'"],
    [["--bogus"], "unknown option '--bogus'"],
    [["-s"], "option '-s, --size <SIZE>' argument missing"],
  ])("%j → %s", (argv, message) => {
    expect(usageError(...argv)).toBe(message);
  });

  it("a bad --proxy-trust entry is a usage error", () => {
    expect(usageError("--proxy-protocol", "5", "--proxy-trust", "10.0.0.0/33")).toMatch(
      /^argument --proxy-trust: Invalid trusted proxy entry "10\.0\.0\.0\/33"/,
    );
    expect(usageError("--proxy-protocol", "5", "--proxy-trust", "nope")).toMatch(
      /^argument --proxy-trust: .*not an IPv4 or IPv6 address/,
    );
  });
});

describe("-l [HOST][:PORT] (aiosmtpd's test_host_port)", () => {
  it.each([
    [[], "localhost", 8025],
    [["-l", "foo:25"], "foo", 25],
    [["--listen", "foo:25"], "foo", 25],
    [["-l", "foo"], "foo", 8025],
    [["-l", ":25"], "localhost", 25],
    [["-l", "::0:25"], "::0", 25],
    [["-l"], "localhost", 8025],
    [["-l", "127.0.0.1:0"], "127.0.0.1", 0],
    [["-l", "foo:"], "foo", 8025],
    [["-l", ""], "", 8025],
    [["-l", "[::1]:2525"], "::1", 2525],
    [["-l", "[::]:25"], "::", 25],
    [["-l", "[::1]"], "::1", 8025],
    [["-l", "[::1]:"], "::1", 8025],
    [["-l", "[fe80::1%eth0]:25"], "fe80::1%eth0", 25],
  ])("%j → %s:%d", (argv, host, port) => {
    const options = ok(...argv);
    expect([options.host, options.port]).toEqual([host, port]);
  });

  it.each([
    [":foo", "Invalid port number: foo"],
    ["host:8o25", "Invalid port number: 8o25"],
    ["host:65536", "Invalid port number: 65536"],
    ["::1", "Invalid port number: 1"].map((x, i) => (i === 1 ? "" : x)),
    ["[::1]:x", "Invalid port number: x"],
    ["[::1]x", "argument -l/--listen: [::1]x: expected [IPV6] or [IPV6]:PORT, e.g. [::1]:8025"],
    ["[::1", "argument -l/--listen: [::1: expected [IPV6] or [IPV6]:PORT, e.g. [::1]:8025"],
    ["[localhost]:25", "argument -l/--listen: [localhost]:25: localhost is not an IPv6 address"],
    ["[]:25", "argument -l/--listen: []:25: no IPv6 address between the brackets"],
  ])("-l %s → %s", (listen, message) => {
    if (message === "") {
      // `::1` splits into host ":" and port "1": valid for the parser (aiosmtpd too).
      expect(parseListen(listen)).toEqual({ host: ":", port: 1 });
      return;
    }
    expect(usageError("-l", listen)).toBe(message);
  });
});

describe("TLS flag pairs (aiosmtpd's test_smtps / test_tls / test_ssl_files_err)", () => {
  it.each(["smtps", "tls"])("--%scert alone or --%skey alone", (meth) => {
    expect(usageError(`--${meth}cert`, "x")).toBe(
      `--${meth}cert and --${meth}key must be specified together`,
    );
    expect(usageError(`--${meth}key`, "x")).toBe(
      `--${meth}cert and --${meth}key must be specified together`,
    );
  });

  it.each(["smtps", "tls"])("%s missing files", (meth) => {
    expect(usageError(`--${meth}cert`, "x", `--${meth}key`, "x")).toBe("Cert file x not found");
    expect(usageError(`--${meth}cert`, "cert.pem", `--${meth}key`, "x")).toBe(
      "Key file x not found",
    );
    expect(usageError(`--${meth}cert`, "x", `--${meth}key`, "key.pem")).toBe(
      "Cert file x not found",
    );
  });

  it("smtps is checked before tls, as aiosmtpd does", () => {
    expect(usageError("--tlscert", "x", "--smtpscert", "y")).toBe(
      "--smtpscert and --smtpskey must be specified together",
    );
  });

  it("accepts both pairs", () => {
    const options = ok(
      "--tlscert",
      "cert.pem",
      "--tlskey",
      "key.pem",
      "--smtpscert",
      "cert.pem",
      "--smtpskey",
      "key.pem",
    );
    expect(options.tls).toEqual({ cert: "cert.pem", key: "key.pem" });
    expect(options.smtps).toEqual({ cert: "cert.pem", key: "key.pem" });
  });
});

let pemDir = "";
let pem: ReturnType<typeof makeTlsFiles>;
const PEM: Record<string, string> = {};

beforeAll(() => {
  pemDir = mkdtempSync(join(tmpdir(), "smtpkit-options-"));
  pem = makeTlsFiles(pemDir);
  PEM["cert.pem"] = readFileSync(pem.cert, "utf8");
  PEM["key.pem"] = readFileSync(pem.key, "utf8");
  PEM["other-key.pem"] = readFileSync(pem.otherKey, "utf8");
  PEM["encrypted-key.pem"] = readFileSync(pem.encryptedKey, "utf8");
  PEM["junk.pem"] = "not PEM at all\n";
});

afterAll(() => {
  rmSync(pemDir, { recursive: true, force: true });
});

/** Reads the fixture named by `path` (cert.pem, key.pem, other-key.pem, junk.pem, ...). */
const read = (path: string): string => {
  const text = PEM[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
  return text;
};

describe("toServeOptions", () => {
  it("maps the defaults: SMTPUTF8 off (aiosmtpd's CLI), size 33554432, no TLS", () => {
    expect(toServeOptions(ok(), read, { hostname: "box.example" })).toEqual({
      host: "localhost",
      port: 8025,
      hostname: "box.example",
      dataSizeLimit: 33554432,
      enableSmtpUtf8: false,
      lmtp: false,
      requireStartTls: false,
    });
  });

  it("maps every flag", () => {
    const options = ok(
      "-l",
      "127.0.0.1:2525",
      "-s",
      "100",
      "-u",
      "--lmtp",
      "--hostname",
      "mx",
      "--ident",
      "X",
      "--timeout",
      "9",
      "--data-timeout",
      "30",
      "--min-data-rate",
      "100",
      "--proxy-protocol",
      "4",
      "--proxy-trust",
      "10.0.0.0/8",
      "--command-call-limit",
      "3",
      "--max-connections",
      "2",
      "--tlscert",
      "cert.pem",
      "--tlskey",
      "key.pem",
      "--smtpscert",
      "cert.pem",
      "--smtpskey",
      "key.pem",
    );
    expect(toServeOptions(options, read, { hostname: "ignored" })).toEqual({
      host: "127.0.0.1",
      port: 2525,
      hostname: "mx",
      ident: "X",
      dataSizeLimit: 100,
      enableSmtpUtf8: true,
      lmtp: true,
      timeout: 9,
      dataTimeout: 30,
      minDataRate: 100,
      proxyProtocolTimeout: 4,
      proxyTrust: ["10.0.0.0/8"],
      commandCallLimit: 3,
      maxConnections: 2,
      tls: { cert: PEM["cert.pem"], key: PEM["key.pem"] },
      requireStartTls: true,
      smtps: { cert: PEM["cert.pem"], key: PEM["key.pem"] },
    });
  });

  it("--no-requiretls with a certificate: STARTTLS offered, not required", () => {
    const options = ok("--tlscert", "cert.pem", "--tlskey", "key.pem", "--no-requiretls");
    expect(toServeOptions(options, read)).toMatchObject({ requireStartTls: false, tls: {} });
  });

  it("-l '' listens on every interface", () => {
    expect(toServeOptions(ok("-l", ""), read).host).toBe("::");
  });

  it("an unreadable file is a usage error naming it", () => {
    const options = ok("--tlscert", "cert.pem", "--tlskey", "key.pem");
    const failing = (path: string): string => {
      throw Object.assign(new Error(`EACCES: ${path}`), { code: "EACCES" });
    };
    expect(() => toServeOptions(options, failing)).toThrow(
      "argument --tlscert: Cert file cert.pem cannot be read (EACCES)",
    );
  });
});

describe("TLS files are checked before anything listens", () => {
  // Every *.pem "exists"; `read` decides what it contains (or that it cannot be read).
  const withFiles = (...argv: string[]) => {
    const result = parseArgs(argv, { exists: (path) => path.endsWith(".pem") });
    if (result.kind !== "run") throw new Error(result.stderr);
    return result.options;
  };
  const failure = (...argv: string[]): string => {
    try {
      toServeOptions(withFiles(...argv), read);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error("expected a usage error");
  };

  it.each(["tls", "smtps"])("--%scert that is not a certificate", (m) => {
    expect(failure(`--${m}cert`, "junk.pem", `--${m}key`, "key.pem")).toBe(
      `argument --${m}cert: Cert file junk.pem is not a certificate (expected PEM "BEGIN CERTIFICATE")`,
    );
  });

  it.each(["tls", "smtps"])("--%skey that is not a private key (here: the certificate)", (m) => {
    expect(failure(`--${m}cert`, "cert.pem", `--${m}key`, "cert.pem")).toBe(
      `argument --${m}key: Key file cert.pem is not a private key (expected PEM "BEGIN PRIVATE KEY")`,
    );
  });

  it.each(["tls", "smtps"])("--%skey that does not belong to the certificate", (m) => {
    expect(failure(`--${m}cert`, "cert.pem", `--${m}key`, "other-key.pem")).toBe(
      `argument --${m}key: Key file other-key.pem: key does not match certificate cert.pem`,
    );
  });

  it("an encrypted key", () => {
    expect(failure("--tlscert", "cert.pem", "--tlskey", "encrypted-key.pem")).toBe(
      "argument --tlskey: Key file encrypted-key.pem is an encrypted private key (no passphrase can be given; decrypt it)",
    );
  });

  it("a missing key file named by its flag", () => {
    expect(failure("--smtpscert", "cert.pem", "--smtpskey", "gone.pem")).toBe(
      "argument --smtpskey: Key file gone.pem cannot be read (ENOENT)",
    );
  });
});

describe("describeServer (the start-up line's summary)", () => {
  const summary = (...argv: string[]) => {
    const options = ok(...argv);
    return describeServer(options, toServeOptions(options, read), "Debugging");
  };

  it("defaults", () => {
    expect(summary()).toBe("SMTP, size 33554432, handler Debugging");
  });

  it("STARTTLS required, or offered with --no-requiretls", () => {
    expect(summary("--tlscert", "cert.pem", "--tlskey", "key.pem")).toBe(
      "SMTP, STARTTLS required, size 33554432, handler Debugging",
    );
    expect(summary("--tlscert", "cert.pem", "--tlskey", "key.pem", "--no-requiretls")).toBe(
      "SMTP, STARTTLS offered, size 33554432, handler Debugging",
    );
  });

  it("SMTPS / LMTPS, no size limit, SMTPUTF8, PROXY protocol", () => {
    expect(summary("--smtpscert", "cert.pem", "--smtpskey", "key.pem", "-s", "0")).toBe(
      "SMTPS, no size limit, handler Debugging",
    );
    expect(summary("--lmtp", "-u", "--proxy-protocol", "3")).toBe(
      "LMTP, SMTPUTF8, size 33554432, PROXY protocol, handler Debugging",
    );
    expect(summary("--lmtp", "--smtpscert", "cert.pem", "--smtpskey", "key.pem")).toMatch(
      /^LMTPS, /,
    );
  });

  it("AUTH: the offered mechanisms, and whether it is required", () => {
    const files = (path: string) => path === "users" || FILES.has(path);
    const run = (...argv: string[]) => {
      const result = parseArgs(argv, { exists: files });
      if (result.kind !== "run") throw new Error(result.stderr);
      const serve = toServeOptions(result.options, (p) => (p === "users" ? "a:b\n" : read(p)));
      return describeServer(result.options, serve, "Sink");
    };
    // Without TLS a client can use only what keeps the password safe in clear, never a -PLUS.
    expect(run("--auth-file", "users", "--auth-mechanisms", "PLAIN,LOGIN,SCRAM-SHA-256")).toBe(
      "SMTP, AUTH SCRAM-SHA-256, size 33554432, handler Sink",
    );
    expect(run("--auth-file", "users")).toBe(
      "SMTP, AUTH CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-1, size 33554432, handler Sink",
    );
    expect(run("--auth-file", "users", "--auth-mechanisms", "PLAIN", "--no-auth-require-tls")).toBe(
      "SMTP, AUTH PLAIN, size 33554432, handler Sink",
    );
    expect(run("--auth-file", "users", "--auth-mechanisms", "PLAIN")).toBe(
      "SMTP, AUTH (none without TLS), size 33554432, handler Sink",
    );
    const withTls = ["--tlscert", "cert.pem", "--tlskey", "key.pem", "--auth-file", "users"];
    // STARTTLS offered, not required: the rest once it is done.
    expect(
      run(
        ...withTls,
        "--no-requiretls",
        "--auth-mechanisms",
        "PLAIN,SCRAM-SHA-256,SCRAM-SHA-256-PLUS",
      ),
    ).toBe(
      "SMTP, STARTTLS offered, AUTH SCRAM-SHA-256, more after STARTTLS: PLAIN SCRAM-SHA-256-PLUS, size 33554432, handler Sink",
    );
    expect(run(...withTls, "--auth-required", "--auth-mechanisms", "scram-sha-256")).toBe(
      "SMTP, STARTTLS required, AUTH required SCRAM-SHA-256, size 33554432, handler Sink",
    );
  });
});

describe("logLevel", () => {
  it.each([
    [0, "error"],
    [1, "info"],
    [2, "debug"],
    [3, "debug"],
  ] as const)("-d × %d → %s", (count, level) => {
    expect(logLevel(count)).toBe(level);
  });
});

describe("-l with a Unix socket path", () => {
  it("a value with a slash is a socket path, served without host and port", () => {
    expect(parseListen("/run/smtpkit/lmtp.sock")).toEqual({
      host: "localhost",
      port: 8025,
      path: "/run/smtpkit/lmtp.sock",
    });
    expect(parseListen("./lmtp.sock").path).toBe("./lmtp.sock");
  });
});
