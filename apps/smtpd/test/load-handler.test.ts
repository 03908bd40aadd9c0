import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Debugging, Mailbox, Sink, SmtpProxy } from "@smtpkit/handlers";
import { describe, expect, it } from "vitest";
import {
  instantiate,
  loadHandler,
  looksLikePath,
  prepareMaildir,
  splitExport,
} from "../src/load-handler.js";
import { CliUsageError } from "../src/options.js";

const here = dirname(fileURLToPath(import.meta.url));
const cwd = here; // module paths below are relative to test/
const load = (name: string, ...args: string[]) => loadHandler({ name, args }, { cwd });

async function loadError(name: string, ...args: string[]): Promise<string> {
  const error = await load(name, ...args).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CliUsageError);
  return (error as Error).message;
}

describe("built-in handlers", () => {
  it("Debugging (default), with stdout/stderr", async () => {
    const plain = await load("Debugging");
    expect(plain.handler).toBeInstanceOf(Debugging);
    expect(plain.label).toBe("Debugging");
    expect((plain.handler as Debugging).stream).toBe(process.stdout);
    expect(((await load("Debugging", "stderr")).handler as Debugging).stream).toBe(process.stderr);
  });

  it("Sink", async () => {
    expect((await load("Sink")).handler).toBeInstanceOf(Sink);
  });

  it("aiosmtpd's dotted names work too", async () => {
    const loaded = await load("aiosmtpd.handlers.Sink");
    expect(loaded.handler).toBeInstanceOf(Sink);
    expect(loaded.label).toBe("Sink");
  });

  it("fromCli errors are usage errors with aiosmtpd's messages", async () => {
    expect(await loadError("Debugging", "stdfoo")).toBe("Debugging usage: [stdout|stderr]");
    expect(await loadError("Debugging", "foo", "bar")).toBe("Debugging usage: [stdout|stderr]");
    expect(await loadError("Sink", "foo")).toBe("Sink handler does not accept arguments");
  });

  it("Mailbox DIR and Proxy HOST PORT, with aiosmtpd's (and smtpkit's) usage errors", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smtpkit-load-"));
    try {
      const mailbox = await load("Mailbox", join(dir, "box"));
      expect(mailbox.handler).toBeInstanceOf(Mailbox);
      expect(mailbox.label).toBe("Mailbox");
      expect((await load("aiosmtpd.handlers.Mailbox", join(dir, "box"))).handler).toBeInstanceOf(
        Mailbox,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await loadError("Mailbox")).toBe("The directory for the maildir is required");
    expect(await loadError("Mailbox", "a", "b")).toBe("Too many arguments for Mailbox handler");
    const proxy = await load("Proxy", "127.0.0.1", "2525");
    expect(proxy.handler).toBeInstanceOf(SmtpProxy);
    expect([(proxy.handler as SmtpProxy).hostname, (proxy.handler as SmtpProxy).port]).toEqual([
      "127.0.0.1",
      2525,
    ]);
    expect(await loadError("Proxy", "host")).toBe("Proxy usage: HOST PORT [transparent|atData]");
    expect(((await load("Proxy", "h", "25", "atData")).handler as SmtpProxy).mode).toBe("atData");
    expect(await loadError("Proxy", "host", "x")).toBe("Invalid port for Proxy handler: x");
  });

  it("Mailbox DIR that cannot be created: one message naming the directory (no hang)", async () => {
    expect(await loadError("Mailbox", "/proc/x")).toBe(
      "Mailbox directory /proc/x cannot be created (ENOENT)",
    );
    const dir = mkdtempSync(join(tmpdir(), "smtpkit-load-"));
    try {
      const file = join(dir, "file");
      writeFileSync(file, "");
      expect(await loadError("Mailbox", join(file, "box"))).toBe(
        `Mailbox directory ${join(file, "box")} cannot be created: ${file} is not a directory`,
      );
      // Created level by level, with the Maildir's tmp/new/cur.
      prepareMaildir("a/b/box", dir);
      for (const sub of ["tmp", "new", "cur"]) {
        expect(existsSync(join(dir, "a/b/box", sub))).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(process.getuid?.() === 0)(
    `Mailbox DIR that is not writable${process.getuid?.() === 0 ? " [skip: root may write anywhere]" : ""}`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "smtpkit-load-"));
      try {
        prepareMaildir("box", dir);
        chmodSync(join(dir, "box", "tmp"), 0o500);
        expect(() => prepareMaildir("box", dir)).toThrow("Mailbox directory box is not writable");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it("the abstract Message and AsyncMessage say how to use them", async () => {
    expect(await loadError("Message")).toBe(
      "Message is an abstract handler: subclass it (handleMessage) in a module and pass -c ./my-handler.js",
    );
    expect(await loadError("aiosmtpd.handlers.AsyncMessage")).toMatch(
      /^AsyncMessage is an abstract handler/,
    );
  });

  it("an unknown name", async () => {
    expect(await loadError("Nope")).toBe(
      "Unknown handler Nope: not a built-in (Debugging, Sink, Mailbox, Proxy, JetStream) nor a module file",
    );
  });
});

describe("module handlers", () => {
  it("default export: a handler object", async () => {
    const loaded = await load("./fixtures/object-handler.mjs");
    expect(loaded.label).toBe("./fixtures/object-handler.mjs");
    expect(Object.keys(loaded.handler)).toEqual(["handleDATA"]);
  });

  it("named `handler` export: a class without fromCli is constructed", async () => {
    const { handler } = await load("fixtures/class-handler.mjs");
    expect(handler.constructor.name).toBe("handler");
    expect(typeof handler.handleDATA).toBe("function");
  });

  it("a class with fromCli gets the CLASSARGS (test_handler_from_cli)", async () => {
    const { handler } = await load("./fixtures/from-cli-handler.mjs", "FOO");
    expect(handler.constructor.name).toBe("FromCliHandler");
    expect((handler as unknown as { called: string }).called).toBe("FOO");
    expect(await loadError("./fixtures/from-cli-handler.mjs", "FOO", "BAR")).toBe(
      "FromCliHandler usage: [ARG]",
    );
  });

  it("MODULE#EXPORT picks a named export", async () => {
    const { handler } = await load("./fixtures/from-cli-handler.mjs#Other");
    expect(handler.constructor.name).toBe("Other");
    expect(await loadError("./fixtures/from-cli-handler.mjs#Missing")).toBe(
      'Handler module ./fixtures/from-cli-handler.mjs has no export "Missing"',
    );
  });

  it("CommonJS module.exports = { handler }", async () => {
    const { handler } = await load("./fixtures/cjs-handler.cjs");
    expect(Object.keys(handler)).toEqual(["handleDATA"]);
  });

  it("an absolute path", async () => {
    const { handler } = await load(join(here, "fixtures/object-handler.mjs"));
    expect(typeof handler.handleDATA).toBe("function");
  });

  it("arguments to a handler without fromCli (test_handler_no_from_cli_exception)", async () => {
    expect(await loadError("./fixtures/class-handler.mjs", "FOO", "BAR")).toBe(
      "Handler class ./fixtures/class-handler.mjs takes no arguments",
    );
    expect(await loadError("./fixtures/object-handler.mjs", "FOO")).toBe(
      "Handler class ./fixtures/object-handler.mjs takes no arguments",
    );
  });

  it("missing, broken and export-less modules", async () => {
    expect(await loadError("./fixtures/nope.mjs")).toBe(
      "Handler module ./fixtures/nope.mjs not found",
    );
    expect(await loadError("./fixtures/broken.mjs")).toBe(
      "Cannot import handler module ./fixtures/broken.mjs: boom at import",
    );
    expect(await loadError("./fixtures/no-export.mjs")).toBe(
      'Handler module ./fixtures/no-export.mjs has no default or "handler" export',
    );
  });
});

describe("TypeScript handler modules", () => {
  it("where Node cannot load .ts: one message saying to compile it or which Node runs it", async () => {
    const importModule = () =>
      Promise.reject(
        Object.assign(new TypeError('Unknown file extension ".ts" for /x/ts-handler.ts'), {
          code: "ERR_UNKNOWN_FILE_EXTENSION",
        }),
      );
    const error = await loadHandler(
      { name: "./fixtures/ts-handler.ts", args: [] },
      { cwd, importModule },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliUsageError);
    expect((error as Error).message).toBe(
      `Handler module ./fixtures/ts-handler.ts is TypeScript, which Node ${process.version} does not run: compile it to .js, or run under Node >= 22.6 with --experimental-strip-types`,
    );
  });

  it("a .ts name is a path, so a missing one is 'not found', not an unknown built-in", async () => {
    expect(await loadError("handler.ts")).toBe("Handler module handler.ts not found");
  });
});

describe("helpers", () => {
  it.each([
    ["Debugging", false],
    ["./h.js", true],
    ["lib/h", true],
    ["h.mjs", true],
    ["h.ts", true],
    ["h.mts", true],
    ["C:\\h", true],
    [".hidden", true],
  ])("looksLikePath(%s) = %s", (name, expected) => {
    expect(looksLikePath(name)).toBe(expected);
  });

  it("splitExport", () => {
    expect(splitExport("./a.js#B")).toEqual({ path: "./a.js", exportName: "B" });
    expect(splitExport("./a#b.js")).toEqual({ path: "./a#b.js", exportName: null });
  });

  it("instantiate rejects non-handlers", async () => {
    await expect(instantiate(42, [], "m")).rejects.toThrow(
      "Handler module m does not export a handler object or class",
    );
    await expect(instantiate({ fromCli: () => null }, [], "m")).rejects.toThrow(
      "m: fromCli() did not return a handler",
    );
    await expect(
      instantiate(
        class {
          constructor() {
            throw new Error("needs args");
          }
        },
        [],
        "m",
      ),
    ).rejects.toThrow("Handler class m cannot be constructed: needs args");
  });
});
