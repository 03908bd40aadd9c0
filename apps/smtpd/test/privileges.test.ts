import { describe, expect, it, vi } from "vitest";
import { createLogger } from "../src/log.js";
import { dropToNobody, findNobody, SETUID_FAILED } from "../src/privileges.js";

const PASSWD =
  "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

describe("dropToNobody", () => {
  it("has aiosmtpd's message", () => {
    expect(SETUID_FAILED).toBe('Cannot setuid "nobody"; try running with -n option.');
  });

  it("finds nobody in passwd(5)", () => {
    expect(findNobody(PASSWD)).toEqual({ uid: 65534, gid: 65534 });
    expect(findNobody("root:x:0:0::/:/bin/sh")).toBeNull();
  });

  it("as root: groups, gid, then uid", () => {
    const calls: string[] = [];
    const proc = {
      getuid: () => 0,
      setgroups: (g: (number | string)[]) => calls.push(`setgroups ${g}`),
      setgid: (id: number | string) => calls.push(`setgid ${id}`),
      setuid: (id: number | string) => calls.push(`setuid ${id}`),
    };
    expect(dropToNobody(proc, () => PASSWD)).toBe(true);
    expect(calls).toEqual(["setgroups 65534", "setgid 65534", "setuid 65534"]);
  });

  it("not root: setuid fails (EPERM) → false", () => {
    const setuid = vi.fn(() => {
      throw Object.assign(new Error("EPERM, Operation not permitted"), { code: "EPERM" });
    });
    const setgid = vi.fn();
    expect(dropToNobody({ getuid: () => 1000, setuid, setgid }, () => PASSWD)).toBe(false);
    expect(setgid).not.toHaveBeenCalled();
    expect(setuid).toHaveBeenCalledWith(65534);
  });

  it("no passwd file: setuid by name", () => {
    const setuid = vi.fn();
    expect(
      dropToNobody({ getuid: () => 0, setuid }, () => {
        throw new Error("ENOENT");
      }),
    ).toBe(true);
    expect(setuid).toHaveBeenCalledWith("nobody");
  });

  it("no setuid on this platform → false", () => {
    expect(dropToNobody({}, () => PASSWD)).toBe(false);
  });
});

describe("createLogger", () => {
  it("prints Python logging's LEVEL:logger:message at or above the level", () => {
    const lines: string[] = [];
    const log = createLogger("info", (line) => lines.push(line));
    log.debug("hidden");
    log.info("Server is listening on localhost:8025");
    log.error("bad");
    expect(lines).toEqual([
      "INFO:mail.log:Server is listening on localhost:8025\n",
      "ERROR:mail.log:bad\n",
    ]);
  });
});
