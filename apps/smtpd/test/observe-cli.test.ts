import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nodemailer from "nodemailer";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { parseArgs } from "../src/options.js";
import { APP_DIR, CLI, killAll, runCli, startCli } from "./cli-helpers.js";

afterEach(killAll);
const work = mkdtempSync(join(tmpdir(), "smtpkit-observe-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const users = join(work, "users.txt");
writeFileSync(users, "alice:wonderland\n");
const POLICY = join(APP_DIR, "test/fixtures/policy-handler.mjs");

const hasSwaks = (() => {
  try {
    execFileSync("swaks", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
// Locally a missing swaks skips (and says so); under CI it fails.
const skipSwaks = !hasSwaks && !process.env.CI;
const swaksNote = skipSwaks ? " [skip: swaks not installed]" : "";

function swaks(port: number, ...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      "swaks",
      [
        "--server",
        `127.0.0.1:${port}`,
        "--timeout",
        "20",
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
        ...args,
      ],
      { timeout: 30_000 },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
    );
  });
}

interface JsonLine {
  level: number;
  msg: string;
  sessionId: string | null;
  event?: string;
  [field: string]: unknown;
}

/** The CLI with --log-format json: stderr parsed line by line (every line must be JSON). */
async function startJsonCli(args: string[]) {
  const child = spawn(
    process.execPath,
    [CLI, "-n", "-l", "127.0.0.1:0", "--log-format", "json", ...args],
    {
      cwd: APP_DIR,
    },
  );
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const lines = (): JsonLine[] =>
    err
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as JsonLine);
  const until = async (check: () => boolean, what: string) => {
    const deadline = Date.now() + 15_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${err}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  await until(() => lines().some((l) => l.msg.includes(" listening on ")), "the listening line");
  const listening = lines().find((l) => l.msg.includes(" listening on "));
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(listening?.msg ?? "")?.[1]);
  return {
    port,
    lines,
    until,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Prometheus text → `name{labels}` → value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

const metricsUrl = (banner: string) => /metrics on (http:\/\/\S+\/metrics)/.exec(banner)?.[1] ?? "";

describe("--log-format and --metrics parsing", () => {
  const parse = (...argv: string[]) => parseArgs(argv, { exists: () => true });
  it("takes text or json, and HOST:PORT for --metrics", () => {
    const ok = parse("--log-format", "json", "--metrics", "127.0.0.1:9464");
    expect(ok.kind === "run" && [ok.options.logFormat, ok.options.metrics]).toEqual([
      "json",
      { host: "127.0.0.1", port: 9464 },
    ]);
    const v6 = parse("--metrics", "[::1]:0");
    expect(v6.kind === "run" && v6.options.metrics).toEqual({ host: "::1", port: 0 });
    const local = parse("--metrics", ":9464");
    expect(local.kind === "run" && local.options.metrics).toEqual({
      host: "localhost",
      port: 9464,
    });
  });
  it.each([
    [
      ["--log-format", "xml"],
      "argument --log-format: invalid choice: 'xml' (choose from 'text', 'json')",
    ],
    [["--metrics", "9464"], "argument --metrics: 9464: expected HOST:PORT, e.g. 127.0.0.1:9464"],
    [
      ["--metrics", "h:70000"],
      "argument --metrics: h:70000: expected HOST:PORT, e.g. 127.0.0.1:9464",
    ],
  ])("%j is a usage error", (argv, message) => {
    expect(parse(...argv)).toMatchObject({
      kind: "exit",
      code: 2,
      stderr: `smtpkit: error: ${message}\n`,
    });
  });
  it("--help lists both", async () => {
    const { stdout } = await runCli(["--help"]);
    expect(stdout).toContain("--log-format <text|json>");
    expect(stdout).toContain("--metrics <HOST:PORT>");
  });
});

describe("--log-format json", () => {
  it.skipIf(skipSwaks)(
    `a swaks session's lines all carry its sessionId; server lines sessionId null; no credentials${swaksNote}`,
    async () => {
      const cli = await startJsonCli([
        "-c",
        "Sink",
        "-dd",
        "--auth-file",
        users,
        "--no-auth-require-tls",
      ]);
      try {
        const sent = await swaks(
          cli.port,
          "--auth",
          "PLAIN",
          "--auth-user",
          "alice",
          "--auth-password",
          "wonderland",
        );
        expect(sent.code, sent.stdout).toBe(0);
        await cli.until(
          () => cli.lines().some((l) => l.event === "close"),
          "the session's close line",
        );
        const lines = cli.lines();
        const server = lines.filter((l) => l.sessionId === null);
        expect(server.map((l) => l.msg)).toContain(`Server is listening on 127.0.0.1:${cli.port}`);
        const session = lines.filter((l) => l.sessionId !== null);
        expect(new Set(session.map((l) => l.sessionId)).size).toBe(1);
        expect(session.every((l) => l.peer === session[0]?.peer)).toBe(true);
        const events = session.map((l) => l.event);
        for (const event of [
          "connect",
          "auth",
          "mail",
          "rcpt",
          "data",
          "close",
          "command",
          "reply",
          "transcript",
        ])
          expect(events).toContain(event);
        expect(session.find((l) => l.event === "auth")).toMatchObject({
          mechanism: "PLAIN",
          success: true,
          level: 30,
        });
        expect(session.find((l) => l.event === "data")).toMatchObject({
          result: "accepted",
          code: 250,
        });
        expect(session.find((l) => l.event === "close")).toMatchObject({ reason: "quit" });
        const transcript = session.filter((l) => l.event === "transcript").map((l) => l.line);
        expect(transcript).toContain("> AUTH PLAIN ********");
        expect(transcript).toContain("< 235 2.7.0 Authentication successful");
        const text = JSON.stringify(lines);
        expect(text).not.toContain("wonderland");
        expect(text).not.toContain(Buffer.from("\0alice\0wonderland").toString("base64"));
      } finally {
        await cli.stop();
      }
    },
  );

  it.skipIf(skipSwaks)(
    `without -d: sessions at info, one line per message, no commands or transcript${swaksNote}`,
    async () => {
      const cli = await startJsonCli(["-c", "Sink"]);
      try {
        expect((await swaks(cli.port)).code).toBe(0);
        await cli.until(
          () => cli.lines().some((l) => l.event === "close"),
          "the session's close line",
        );
        const events = cli.lines().map((l) => l.event);
        // At info a message is one line: its data line names the sender.
        expect(events.filter((e) => e !== undefined)).toEqual(["connect", "data", "close"]);
        expect(cli.lines().find((l) => l.event === "data")).toMatchObject({
          from: "a@example.com",
          result: "accepted",
          recipients: 1,
        });
        expect(cli.lines().every((l) => l.level >= 30)).toBe(true);
      } finally {
        await cli.stop();
      }
    },
  );
});

describe("--metrics", () => {
  it.skipIf(skipSwaks)(
    `/metrics over HTTP: 3 accepted, 1 rejected, AUTH failures by mechanism; /healthz${swaksNote}`,
    async () => {
      const cli = await startCli([
        "-n",
        "-l",
        "127.0.0.1:0",
        "-c",
        POLICY,
        "--auth-file",
        users,
        "--no-auth-require-tls",
        "--metrics",
        "127.0.0.1:0",
      ]);
      const url = metricsUrl(cli.banner);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      for (const n of [1, 2, 3])
        expect((await swaks(cli.port, "--header", `Subject: ok ${n}`)).code).toBe(0);
      const rejected = await swaks(cli.port, "--header", "Subject: reject me");
      expect(rejected.stdout).toContain("<** 554 5.7.1 Rejected by policy");
      for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"]) {
        const failed = await swaks(
          cli.port,
          "--auth",
          mechanism,
          "--auth-user",
          "alice",
          "--auth-password",
          "wrong",
        );
        expect(failed.stdout).toContain("<** 535");
      }
      const good = await swaks(
        cli.port,
        "--auth",
        "LOGIN",
        "--auth-user",
        "alice",
        "--auth-password",
        "wonderland",
      );
      expect(good.code, good.stdout).toBe(0);
      const health = await fetch(url.replace(/metrics$/, "healthz"));
      expect([health.status, await health.text()]).toEqual([200, "ok\n"]);
      // The last session's close is counted just after swaks has gone.
      let m = await scrape(url);
      for (let i = 0; i < 50 && m.get('smtpkit_connections_open{tls="no"}') !== 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        m = await scrape(url);
      }
      expect(m.get('smtpkit_messages_total{result="accepted"}')).toBe(4);
      expect(m.get('smtpkit_messages_total{result="rejected"}')).toBe(1);
      expect(m.get('smtpkit_auth_total{mechanism="PLAIN",result="failure"}')).toBe(1);
      expect(m.get('smtpkit_auth_total{mechanism="LOGIN",result="failure"}')).toBe(1);
      expect(m.get('smtpkit_auth_total{mechanism="CRAM-MD5",result="failure"}')).toBe(1);
      expect(m.get('smtpkit_auth_total{mechanism="LOGIN",result="success"}')).toBe(1);
      expect(m.get('smtpkit_connections_total{tls="no"}')).toBe(8);
      expect(m.get('smtpkit_connections_open{tls="no"}')).toBe(0);
      expect(m.get('smtpkit_rejections_total{command="DATA",code="554"}')).toBe(1);
      expect(await cli.stop("SIGTERM")).toBe(0);
    },
  );

  it("--workers 2: /metrics sums the workers' counters", async () => {
    const cli = await startCli([
      "-n",
      "-l",
      "127.0.0.1:0",
      "-c",
      POLICY,
      "--workers",
      "2",
      "--metrics",
      "127.0.0.1:0",
    ]);
    const url = metricsUrl(cli.banner);
    const pids = new Set<string>();
    let sent = 0;
    // Until both workers have answered at least once (the primary hands connections round-robin).
    for (; sent < 40 && (pids.size < 2 || sent < 6); sent++) {
      const transport = nodemailer.createTransport({
        host: "127.0.0.1",
        port: cli.port,
        secure: false,
        ignoreTLS: true,
      });
      const info = await transport.sendMail({
        from: "a@example.com",
        to: "b@example.org",
        subject: `n ${sent}`,
        text: "hi",
      });
      transport.close();
      pids.add(/pid (\d+)/.exec(info.response)?.[1] ?? "");
    }
    expect(pids.size).toBe(2);
    let m = await scrape(url);
    for (let i = 0; i < 50 && m.get('smtpkit_messages_total{result="accepted"}') !== sent; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      m = await scrape(url);
    }
    expect(m.get('smtpkit_messages_total{result="accepted"}')).toBe(sent);
    expect(m.get('smtpkit_connections_total{tls="no"}')).toBe(sent);
    expect(await cli.stop("SIGTERM")).toBe(0);
  });
});
