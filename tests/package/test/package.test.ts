import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  exportEntries,
  manifestProblems,
  missingFromPack,
  type PackedProject,
  packAndInstall,
  publishable,
  root,
} from "./packed-project.js";

const run = promisify(execFile);
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const withExports = publishable.filter((w) => exportEntries(w.manifest).length > 0);
// Which exports each runtime loads: "./deno" and "./bun" subpaths only there, TypeScript sources only
// under Bun (Node 20 does not run them, Deno does not strip types under node_modules).
const importable = (runtime: "node" | "deno" | "bun") =>
  withExports.flatMap((w) =>
    exportEntries(w.manifest).filter(
      (e) =>
        e.runtime === "any" ||
        e.runtime === runtime ||
        (runtime === "bun" && e.runtime === "source"),
    ),
  );
// A Node program's types: the packages that declare Node among their engines (not @smtpkit/deno or /bun).
const forNode = (specifier: string) => {
  const w = withExports.find(
    (w) => specifier === w.manifest.name || specifier.startsWith(`${w.manifest.name}/`),
  );
  const engines = (w?.manifest.engines ?? {}) as Record<string, string>;
  return Object.keys(engines).length === 0 || "node" in engines;
};

let project: PackedProject;
beforeAll(() => {
  project = packAndInstall();
});
afterAll(() => {
  if (project) rmSync(project.dir, { recursive: true, force: true });
});

it("finds the publishable packages", () => {
  expect(publishable.map((w) => w.manifest.name)).toEqual(
    expect.arrayContaining(["@smtpkit/core", "@smtpkit/node", "smtpkit"]),
  );
});

it("every publishable package has the metadata npm needs", () => {
  expect(publishable.flatMap(manifestProblems)).toEqual([]);
});

it("every tarball holds what its package.json points at, the LICENSE and the README", () => {
  const problems = publishable.flatMap((w) => {
    const files = project.files.get(w.manifest.name) ?? [];
    const extra = ["LICENSE", "README.md"]
      .filter((f) => !files.includes(f))
      .map((f) => `${w.manifest.name} (${w.dir}): ${f} not packed`);
    return [...missingFromPack(w, files), ...extra];
  });
  expect(problems).toEqual([]);
});

it("a package whose build output is missing from its tarball is named", () => {
  const core = publishable.find((w) => w.manifest.name === "@smtpkit/core");
  expect(core).toBeDefined();
  if (!core) return;
  const withoutDist = (project.files.get("@smtpkit/core") ?? []).filter(
    (f) => !f.startsWith("dist/"),
  );
  const problems = missingFromPack(core, withoutDist);
  expect(problems.length).toBeGreaterThan(0);
  expect(problems[0]).toMatch(
    /^@smtpkit\/core \(packages\/core\): "dist\/.+" is referenced by package.json but not in the package/,
  );
});

describe("the smtpkit command from its tarball", () => {
  const version = publishable.find((w) => w.manifest.name === "smtpkit")?.manifest.version;

  it("npx smtpkit --version", async () => {
    const { stdout } = await run("npx", ["--no-install", "smtpkit", "--version"], {
      cwd: project.dir,
    });
    expect(stdout.trim()).toContain(String(version));
  });

  it("npx smtpkit -n -l 127.0.0.1:PORT takes a message from Nodemailer", async () => {
    const port = await freePort();
    const server = spawn("npx", ["--no-install", "smtpkit", "-n", "-l", `127.0.0.1:${port}`], {
      cwd: project.dir,
      detached: true,
    });
    try {
      const output = collect(server);
      await waitFor(
        () => output.stderr.includes("listening") || output.stdout.includes("listening"),
        30_000,
        () => output.stderr,
      );
      const info = await nodemailer
        .createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true })
        .sendMail({
          from: "alice@example.com",
          to: "bob@example.com",
          subject: "packed",
          text: "from the tarball",
        });
      expect(info.response).toMatch(/^250/);
      await waitFor(
        () => output.stdout.includes("from the tarball"),
        10_000,
        () => output.stdout,
      );
      expect(output.stdout).toContain("Subject: packed");
    } finally {
      stop(server);
    }
  });
});

describe("the smtpkit-inbox command from its tarball", () => {
  it("stores a message from Nodemailer (better-sqlite3 built at install) and serves it and its UI", async () => {
    const [smtpPort, httpPort] = [await freePort(), await freePort()];
    const server = spawn(
      "npx",
      [
        "--no-install",
        "smtpkit-inbox",
        "--smtp",
        `127.0.0.1:${smtpPort}`,
        "--http",
        `127.0.0.1:${httpPort}`,
      ],
      { cwd: project.dir, detached: true },
    );
    try {
      const output = collect(server);
      await waitFor(
        () => output.stdout.includes("HTTP: http://"),
        30_000,
        () => output.stderr,
      );
      await nodemailer
        .createTransport({ host: "127.0.0.1", port: smtpPort, secure: false, ignoreTLS: true })
        .sendMail({
          from: "alice@example.com",
          to: "bob@example.com",
          subject: "packed inbox",
          text: "hi",
        });
      const listing = (await (
        await fetch(`http://127.0.0.1:${httpPort}/api/v1/messages`)
      ).json()) as {
        messages: { Subject: string }[];
      };
      expect(listing.messages.map((m) => m.Subject)).toEqual(["packed inbox"]);
      expect(await (await fetch(`http://127.0.0.1:${httpPort}/ui/app.js`)).text()).toContain(
        "EventSource",
      );
    } finally {
      stop(server);
    }
  });
});

describe("imports from Node", () => {
  it.each(importable("node").map((e) => [e.specifier]))("ESM: import %s", async (specifier) => {
    const { stdout } = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const m = await import(${JSON.stringify(specifier)}); console.log(Object.keys(m).length)`,
      ],
      { cwd: project.dir },
    );
    expect(Number(stdout.trim()), `${specifier} exports nothing`).toBeGreaterThan(0);
  });

  it.each(importable("node").map((e) => [e.specifier]))("CJS: require(%s)", async (specifier) => {
    const { stdout } = await run(
      process.execPath,
      ["-e", `console.log(Object.keys(require(${JSON.stringify(specifier)})).length)`],
      { cwd: project.dir },
    );
    expect(Number(stdout.trim()), `${specifier} exports nothing`).toBeGreaterThan(0);
  });
});

describe("a strict TypeScript consumer", () => {
  const consumer = () => {
    const entries = importable("node").filter((e) => forNode(e.specifier));
    const lines = entries.map((e, i) => `import * as m${i} from ${JSON.stringify(e.specifier)};`);
    lines.push(`export const modules: object[] = [${entries.map((_, i) => `m${i}`).join(", ")}];`);
    lines.push(`import { serve, type Handler } from "@smtpkit/node";`);
    lines.push(
      `const handler: Handler = { async handleDATA(_server, _session, envelope) { return envelope.rcptTos.length > 0 ? "250 OK" : "554 no recipients"; } };`,
    );
    lines.push(`const server = await serve(handler, { host: "127.0.0.1", port: 0 });`);
    lines.push(`const port: number = server.port;`);
    lines.push(`console.log(port);`);
    lines.push(`await server.close();`);
    return `${lines.join("\n")}\n`;
  };

  it.each([
    ["node16", { module: "node16", moduleResolution: "node16" }],
    ["bundler", { module: "esnext", moduleResolution: "bundler" }],
  ])("typechecks with moduleResolution %s", async (name, options) => {
    const dir = join(project.dir, `ts-${name}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "consumer.ts"), consumer());
    writeFileSync(join(dir, "package.json"), `${JSON.stringify({ type: "module" })}\n`);
    const tsconfig = {
      compilerOptions: {
        ...options,
        target: "es2022",
        lib: ["es2022", "dom"],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        // @types/node from the workspace: the consumer project itself installed only the tarballs.
        typeRoots: [join(root, "node_modules", "@types")],
        types: ["node"],
      },
      files: ["consumer.ts"],
    };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
    const result = await run(bin("tsc"), ["-p", dir], { cwd: dir }).catch((error) => error);
    expect(`${result.stdout ?? ""}${result.stderr ?? ""}`).toBe("");
  });
});

describe("the same tarballs under Deno", () => {
  const env = { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };
  const script = () => {
    const entries = importable("deno");
    return [
      ...entries.map((e, i) => `import * as m${i} from "npm:${e.specifier}";`),
      `const modules: object[] = [${entries.map((_, i) => `m${i}`).join(", ")}];`,
      `for (const m of modules) if (Object.keys(m).length === 0) throw new Error("a module exports nothing");`,
      `import { serve } from "npm:@smtpkit/deno";`,
      `const server = await serve({}, { host: "127.0.0.1", port: 0 });`,
      `const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });`,
      `const buffer = new Uint8Array(512);`,
      `const n = await conn.read(buffer);`,
      `console.log(new TextDecoder().decode(buffer.subarray(0, n ?? 0)).trim());`,
      `conn.close();`,
      `await server.close();`,
      "",
    ].join("\n");
  };
  beforeAll(() => {
    mkdirSync(join(project.dir, "deno"), { recursive: true });
    writeFileSync(
      join(project.dir, "deno.json"),
      `${JSON.stringify({ nodeModulesDir: "manual" })}\n`,
    );
    writeFileSync(join(project.dir, "deno", "main.ts"), script());
  });

  it("the declarations of Deno's packages import no node:* module (they need no @types/node)", () => {
    const forDeno = withExports.filter((w) => "deno" in ((w.manifest.engines ?? {}) as object));
    expect(forDeno.length).toBeGreaterThan(0);
    const offending = forDeno.flatMap((w) =>
      (project.files.get(w.manifest.name) ?? [])
        .filter((file) => /\.d\.c?ts$/.test(file))
        .filter((file) =>
          /from ['"]node:/.test(
            readFileSync(join(project.dir, "node_modules", w.manifest.name, file), "utf8"),
          ),
        )
        .map((file) => `${w.manifest.name}: ${file} imports from node:*`),
    );
    expect(offending).toEqual([]);
  });

  it("deno check passes (no @types/node in the project)", async () => {
    expect(existsSync(join(project.dir, "node_modules", "@types", "node"))).toBe(false);
    const result = await run(bin("deno"), ["check", "deno/main.ts"], {
      cwd: project.dir,
      env,
    }).catch((error) => error);
    expect(result.code ?? 0, `${result.stderr}`).toBe(0);
  });

  it("deno run: imports every package and serves a greeting", async () => {
    const { stdout } = await run(
      bin("deno"),
      [
        "run",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "--allow-env",
        "--allow-sys",
        "deno/main.ts",
      ],
      { cwd: project.dir, env },
    );
    expect(stdout).toMatch(/^220 /m);
  });
});

describe("the same tarballs under Bun", () => {
  it("bun test: imports every package and serves a greeting", async () => {
    const entries = importable("bun");
    // A `bun test` file, so that the bun:test the compliance suite's Bun glue imports is there.
    const source = [
      `import { expect, test } from "bun:test";`,
      ...entries.map((e, i) => `import * as m${i} from ${JSON.stringify(e.specifier)};`),
      `const modules: object[] = [${entries.map((_, i) => `m${i}`).join(", ")}];`,
      `for (const m of modules) if (Object.keys(m).length === 0) throw new Error("a module exports nothing");`,
      `import { serve } from "@smtpkit/bun";`,
      `import { connect } from "node:net";`,
      `const server = await serve({}, { host: "127.0.0.1", port: 0 });`,
      `const greeting = await new Promise<string>((resolve, reject) => { const s = connect(server.port, "127.0.0.1"); s.once("data", (d) => { resolve(String(d)); s.destroy(); }); s.once("error", reject); });`,
      `test("greeting", () => expect(greeting).toMatch(/^220 /));`,
      `await server.close();`,
      "",
    ].join("\n");
    writeFileSync(join(project.dir, "consumer.test.ts"), source);
    const { stderr } = await run(bin("bun"), ["test", "./consumer.test.ts"], { cwd: project.dir });
    expect(stderr).toMatch(/ 1 pass/);
    expect(stderr).toMatch(/ 0 fail/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function collect(child: ChildProcess) {
  const output = { stdout: "", stderr: "" };
  child.stdout?.on("data", (d) => (output.stdout += String(d)));
  child.stderr?.on("data", (d) => (output.stderr += String(d)));
  return output;
}

async function waitFor(check: () => boolean, timeout: number, describe: () => string) {
  const end = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out; output so far:\n${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stop(child: ChildProcess) {
  // npx runs the command in a child of its own: signal the whole process group.
  if (child.pid !== undefined && child.exitCode === null) {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
  }
}
