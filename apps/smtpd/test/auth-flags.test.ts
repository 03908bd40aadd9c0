import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseArgs, toServeOptions } from "../src/options.js";
import { killAll, python, runCli, startCli } from "./cli-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "smtpkit-auth-flags-"));
const usersFile = join(dir, "users.txt");
writeFileSync(usersFile, "# test users\nalice:wonderland\n");

afterEach(killAll);

const parse = (argv: string[]) => parseArgs(argv, { exists: (path) => path === usersFile });

describe("AUTH flags", () => {
  it("map to the server's auth options", () => {
    const parsed = parse([
      "--auth-file",
      usersFile,
      "--auth-mechanisms",
      "plain,SCRAM-SHA-256",
      "--auth-required",
      "--no-auth-require-tls",
    ]);
    if (!("options" in parsed)) throw new Error(parsed.stderr);
    const serve = toServeOptions(parsed.options, () => "alice:wonderland\n");
    expect(serve.authRequired).toBe(true);
    expect(serve.authRequireTls).toBe(false);
    expect(serve.mechanisms?.map((m) => m.name)).toEqual(["SCRAM-SHA-256"]);
    expect(serve.authExcludeMechanism).toEqual(["LOGIN"]);
    expect(typeof serve.authenticator).toBe("function");
  });

  it("without AUTH flags the server keeps aiosmtpd's defaults", () => {
    const parsed = parse([]);
    if (!("options" in parsed)) throw new Error(parsed.stderr);
    const serve = toServeOptions(parsed.options, () => "");
    expect(serve.mechanisms).toBeUndefined();
    expect(serve.authenticator).toBeUndefined();
  });

  it("a missing users file or an unknown mechanism is a usage error (exit 2)", async () => {
    const missing = await runCli(["-n", "--auth-file", join(dir, "nope.txt")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`smtpkit: error: Auth file ${join(dir, "nope.txt")} not found\n`);
    const unknown = await runCli(["-n", "--auth-mechanisms", "PLAIN,FOO"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^smtpkit: error: argument --auth-mechanisms: unknown mechanism FOO/,
    );
  });

  it("smtplib logs in with PLAIN and CRAM-MD5 from a users file; a wrong password gets 535", async () => {
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--auth-file",
      usersFile,
      "--auth-required",
      "--no-auth-require-tls",
    ]);
    const script = `
import json, smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
out = {}
for mech, password in (("PLAIN", "wonderland"), ("CRAM-MD5", "wonderland"), ("PLAIN", "wrong")):
    s = smtplib.SMTP(host, port)
    s.ehlo()
    try:
        s.user, s.password = "alice", password
        code, _ = s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_cram_md5)
        out[mech + ":" + password] = code
        out["send:" + mech + ":" + password] = s.sendmail("a@example.com", ["b@example.com"], "Subject: x\\r\\n\\r\\nhi")
    except smtplib.SMTPAuthenticationError as e:
        out[mech + ":" + password] = e.smtp_code
    s.quit()
s = smtplib.SMTP(host, port)
s.ehlo()
try:
    s.sendmail("a@example.com", ["b@example.com"], "x")
except smtplib.SMTPSenderRefused as e:
    out["unauthenticated"] = e.smtp_code
print(json.dumps(out))
`;
    const result = await python<Record<string, unknown>>(script, [cli.host, cli.port]);
    expect(result).toEqual({
      "PLAIN:wonderland": 235,
      "send:PLAIN:wonderland": {},
      "CRAM-MD5:wonderland": 235,
      "send:CRAM-MD5:wonderland": {},
      "PLAIN:wrong": 535,
      unauthenticated: 530,
    });
    expect(await cli.stop("SIGINT")).toBe(0);
  });
});
