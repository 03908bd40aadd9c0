/**
 * `--extensions LIST`: parsing (each item, values, usage errors) and the built CLI offering and
 * checking the parameters for Python's smtplib.
 */
import { afterEach, describe, expect, it } from "vitest";
import { parseExtensionList } from "../src/extensions.js";
import { parseArgs, toServeOptions } from "../src/options.js";
import { killAll, python, runCli, startCli } from "./cli-helpers.js";

afterEach(killAll);

const parse = (argv: string[]) => parseArgs(argv, { exists: () => true });

describe("--extensions", () => {
  it("turns each extension on, with its value", () => {
    expect(
      parseExtensionList("binarymime, MT-Priority=mixer,deliverby=60,futurerelease=3600,rrvs"),
    ).toEqual({
      binaryMime: true,
      mtPriority: "MIXER",
      deliverBy: { minimum: 60 },
      futureRelease: { maxInterval: 3600 },
      rrvs: true,
    });
    expect(parseExtensionList("mt-priority,deliverby,futurerelease")).toEqual({
      mtPriority: true,
      deliverBy: true,
      futureRelease: true,
    });
  });

  it("hands them to serve() and names them in the start-up summary", () => {
    const parsed = parse(["--extensions", "rrvs,deliverby=30"]);
    if (parsed.kind !== "run") throw new Error(parsed.stderr);
    expect(toServeOptions(parsed.options, () => "").extensions).toEqual({
      rrvs: true,
      deliverBy: { minimum: 30 },
    });
    const none = parse([]);
    if (none.kind !== "run") throw new Error(none.stderr);
    expect(toServeOptions(none.options, () => "").extensions).toBeUndefined();
  });

  it.each([
    [
      "dsn",
      "argument --extensions: unknown extension dsn; choose from binarymime, mt-priority, deliverby, futurerelease, rrvs",
    ],
    [
      "",
      "argument --extensions: expected one of binarymime, mt-priority, deliverby, futurerelease, rrvs",
    ],
    ["rrvs=1", "argument --extensions: rrvs takes no value"],
    ["binarymime=yes", "argument --extensions: binarymime takes no value"],
    [
      "futurerelease=0",
      "argument --extensions: futurerelease=0: expected whole seconds from 1 to 999999999",
    ],
    [
      "deliverby=-1",
      "argument --extensions: deliverby=-1: expected whole seconds from 0 to 999999999",
    ],
    [
      "mt-priority=a b",
      "argument --extensions: mt-priority=a b: expected a profile name such as MIXER",
    ],
  ])("%j is a usage error", (list, message) => {
    const parsed = parse(["--extensions", list]);
    expect(parsed).toMatchObject({ kind: "exit", code: 2, stderr: `smtpkit: error: ${message}\n` });
  });

  it("exits 2 with the message from the real CLI", async () => {
    const run = await runCli(["-n", "--extensions", "xclient"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      "smtpkit: error: argument --extensions: unknown extension xclient",
    );
  });

  it("the CLI offers them and checks the parameters smtplib sends", async () => {
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--extensions",
      "binarymime,mt-priority=MIXER,deliverby=60,futurerelease=3600,rrvs",
    ]);
    expect(cli.banner).toMatch(
      /\(SMTP, BINARYMIME, MT-PRIORITY MIXER, DELIVERBY 60, FUTURERELEASE 3600, RRVS, size 33554432, handler Sink\)$/,
    );
    const result = await python<Record<string, unknown>>(
      `
import json, smtplib, sys
c = smtplib.SMTP(sys.argv[1], int(sys.argv[2]))
c.ehlo("client.example")
out = {k: c.esmtp_features.get(k) for k in ("binarymime", "limits", "mt-priority", "deliverby", "rrvs")}
out["futurerelease"] = c.esmtp_features["futurerelease"].split(" ")[0]
def mail(*options):
    code, text = c.mail("a@example.com", list(options))
    c.rset()
    return [code, text.decode()]
out["ok"] = mail("MT-PRIORITY=2", "BY=120;R", "HOLDFOR=3600", "BODY=BINARYMIME")
out["priority"] = mail("MT-PRIORITY=+10")
out["by"] = mail("BY=59;R")
out["hold"] = mail("HOLDFOR=3601")
c.mail("a@example.com")
code, text = c.rcpt("b@example.com", ["RRVS=2014-04-03T23:01:00Z"])
out["rrvs_ok"] = [code, text.decode()]
code, text = c.rcpt("c@example.com", ["RRVS=2014-04-03"])
out["rrvs_bad"] = [code, text.decode()]
c.quit()
print(json.dumps(out))
`,
      [cli.host, cli.port],
    );
    expect(result).toEqual({
      binarymime: "",
      limits: "RCPTMAX=1000",
      "mt-priority": "MIXER",
      deliverby: "60",
      rrvs: "",
      futurerelease: "3600",
      ok: [250, "2.1.0 OK"],
      priority: [501, "5.5.4 Error: MT-PRIORITY must be a whole number from -9 to 9"],
      by: [555, "5.5.4 Error: BY time is below the advertised minimum"],
      hold: [554, "5.5.4 Error: release time beyond the advertised maximum"],
      rrvs_ok: [250, "2.1.5 OK"],
      rrvs_bad: [501, "5.5.4 Error: bad RRVS value"],
    });
    expect(await cli.stop()).toBe(0);
  });
});
