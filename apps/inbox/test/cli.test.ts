import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import nodemailer from "nodemailer";
import { afterEach, describe, expect, it } from "vitest";

const run = promisify(execFile);
const BIN = new URL("../bin/smtpkit-inbox.mjs", import.meta.url).pathname;
// Bun comes with the workspace's devDependencies.
const BUN = new URL("../../../node_modules/.bin/bun", import.meta.url).pathname;
const hasBun = existsSync(BUN);
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Starts the command and waits for the two URLs it prints. */
async function startCli(
  args: string[],
  runtime: string[] = [process.execPath, BIN],
): Promise<{ child: ChildProcess; smtpPort: number; httpUrl: string; output: () => string }> {
  const [command = process.execPath, ...before] = runtime;
  const child = spawn(command, [...before, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const deadline = Date.now() + 20_000;
  while (!/HTTP: http:\/\/\S+/.test(output)) {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output}`);
    if (Date.now() > deadline) throw new Error(`no URLs printed: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const smtpPort = Number(/(?:SMTP|LMTP): \w+:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
  const httpUrl = /HTTP: (http:\/\/\S+)/.exec(output)?.[1] as string;
  return { child, smtpPort, httpUrl, output: () => output };
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  child.kill("SIGTERM");
  return exited;
}

describe("the smtpkit-inbox command", () => {
  it("--help lists the flags", async () => {
    const { stdout } = await run(process.execPath, [BIN, "--help"]);
    for (const flag of [
      "--smtp",
      "--http",
      "--db",
      "--tlscert",
      "--tlskey",
      "--auth-any",
      "--auth-file",
      "--lmtp",
      "--size",
    ])
      expect(stdout).toContain(flag);
  });

  it("a bad address is a usage error", async () => {
    const error = await run(process.execPath, [BIN, "--smtp", "nowhere"]).catch((e) => e);
    expect(error.code).toBe(2);
    expect(error.stderr).toContain("expected HOST:PORT");
  });

  it("prints both URLs, stores what it receives in the database file, keeps it across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smtpkit-inbox-cli-"));
    dirs.push(dir);
    const db = join(dir, "mail.sqlite");
    const args = ["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", db];
    const first = await startCli(args);
    expect(first.output()).toContain(`database: ${db}`);
    await nodemailer
      .createTransport({ host: "127.0.0.1", port: first.smtpPort, secure: false, ignoreTLS: true })
      .sendMail({ from: "a@example.com", to: "b@example.com", subject: "kept", text: "on disk" });
    const listing = (await (await fetch(`${first.httpUrl}/api/v1/messages`)).json()) as {
      total: number;
    };
    expect(listing.total).toBe(1);
    expect(await stop(first.child)).toBe(0);

    const second = await startCli(args);
    const again = (await (await fetch(`${second.httpUrl}/api/v1/messages`)).json()) as {
      messages: { Subject: string }[];
    };
    expect(again.messages.map((m) => m.Subject)).toEqual(["kept"]);
    const page = await fetch(second.httpUrl);
    expect(await page.text()).toContain("<title>smtpkit inbox</title>");
    expect(await stop(second.child)).toBe(0);
  });

  it("--size refuses larger messages", async () => {
    const cli = await startCli([
      "--smtp",
      "127.0.0.1:0",
      "--http",
      "127.0.0.1:0",
      "--size",
      "1000",
    ]);
    const error = await nodemailer
      .createTransport({ host: "127.0.0.1", port: cli.smtpPort, secure: false, ignoreTLS: true })
      .sendMail({
        from: "a@example.com",
        to: "b@example.com",
        subject: "big",
        text: "x".repeat(5000),
      })
      .catch((e: { responseCode?: number }) => e);
    expect((error as { responseCode?: number }).responseCode).toBe(552);
    await stop(cli.child);
  });

  it.runIf(hasBun || process.env.CI === "true")(
    `runs on Bun too (bun:sqlite instead of better-sqlite3)${hasBun ? "" : " [skip: bun not installed]"}`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "smtpkit-inbox-bun-"));
      dirs.push(dir);
      const cli = await startCli(
        ["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", join(dir, "bun.sqlite")],
        [BUN, BIN],
      );
      await nodemailer
        .createTransport({ host: "127.0.0.1", port: cli.smtpPort, secure: false, ignoreTLS: true })
        .sendMail({
          from: "a@example.com",
          to: "b+bun@example.com",
          subject: "on bun",
          text: "hello",
          attachments: [{ filename: "x.txt", content: "x" }],
        });
      const listing = (await (
        await fetch(`${cli.httpUrl}/api/v1/messages?subject=/on b.n/`)
      ).json()) as {
        messages: { Subject: string; Tags: string[]; Attachments: number }[];
      };
      expect(listing.messages).toMatchObject([
        { Subject: "on bun", Tags: ["bun"], Attachments: 1 },
      ]);
      const message = (await (await fetch(`${cli.httpUrl}/api/v1/message/latest`)).json()) as {
        Text: string;
      };
      expect(message.Text.trim()).toBe("hello");
      expect(await stop(cli.child)).toBe(0);
    },
  );
});
