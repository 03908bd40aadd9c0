import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { transformSync } from "esbuild";
import nodemailer from "nodemailer";
import { beforeAll, describe, expect, it } from "vitest";
// A plain .mjs module, shared with the package test and the release dry run.
import { publishableWorkspaces } from "../../../scripts/workspaces.mjs";
import { portsIn, root, type Snippet, shellExamples, snippets } from "./snippets.js";

const run = promisify(execFile);
const work = join(root, "tests", "readme", ".snippets");
const fixtures = join(work, "fixtures");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const all = snippets();

beforeAll(() => {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(fixtures, { recursive: true });
  // What the examples read from their directory: the key and certificate the Deno and Bun READMEs
  // make with openssl, and a users file (see CONTRIBUTING.md).
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-keyout",
      join(fixtures, "key.pem"),
      "-out",
      join(fixtures, "cert.pem"),
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  writeFileSync(join(fixtures, "users.txt"), "alice:wonderland\n");
});

// Each example gets a directory of its own that is a project of its own (so that `npx` runs the
// command there, not in tests/readme), with the workspace's node_modules linked in.
const manifest = JSON.parse(readFileSync(join(root, "tests", "readme", "package.json"), "utf8"));
function prepare(id: string): string {
  const dir = join(work, id.replace(/[^a-z0-9]+/gi, "-"));
  mkdirSync(dir, { recursive: true });
  for (const file of ["key.pem", "cert.pem", "users.txt"])
    copyFileSync(join(fixtures, file), join(dir, file));
  // Every publishable workspace (found, so a new package's examples resolve too) and the clients.
  const workspaces = (
    publishableWorkspaces() as { manifest: { name: string; version: string } }[]
  ).map(({ manifest: m }) => [m.name, m.version]);
  const dependencies = { ...manifest.devDependencies, ...Object.fromEntries(workspaces) };
  const project = { name: "readme-example", private: true, type: "module", dependencies };
  writeFileSync(join(dir, "package.json"), `${JSON.stringify(project, null, 2)}\n`);
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  return dir;
}

function launch(snippet: Snippet, dir: string): ChildProcess {
  const env = { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", FORCE_COLOR: "0" };
  const options = { cwd: dir, env, detached: true };
  switch (snippet.runtime) {
    case "node": {
      const { code } = transformSync(snippet.code, {
        loader: snippet.language,
        format: "esm",
        target: "node20",
      });
      writeFileSync(join(dir, "snippet.mjs"), code);
      return spawn(process.execPath, ["snippet.mjs"], options);
    }
    case "vitest":
      writeFileSync(join(dir, `snippet.test.${snippet.language}`), snippet.code);
      writeFileSync(
        join(dir, "vitest.config.mjs"),
        `export default { test: { include: ["snippet.test.*"] } };\n`,
      );
      return spawn(bin("vitest"), ["run", "--root", dir, "--dir", dir], options);
    case "deno":
      writeFileSync(join(dir, `snippet.${snippet.language}`), snippet.code);
      return spawn(
        bin("deno"),
        [
          "run",
          "--allow-net=127.0.0.1",
          "--allow-read",
          "--allow-env",
          "--allow-sys",
          `snippet.${snippet.language}`,
        ],
        options,
      );
    case "bun":
      writeFileSync(join(dir, `snippet.${snippet.language}`), snippet.code);
      return spawn(bin("bun"), [`snippet.${snippet.language}`], options);
  }
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

/** How long an example that is a test file may take: it runs a whole suite. */
const suiteTimeout = 300_000;

/**
 * Runs an example the way CONTRIBUTING.md describes: it passes when it exits 0 by itself, or when
 * it serves on the port it names, takes a message from Nodemailer (any SMTP reply counts: the
 * example decides) and is still running when it is stopped.
 */
async function exercise(
  child: ChildProcess,
  ports: number[],
  implicitTls: boolean,
  timeout = 30_000,
) {
  const output = { stdout: "", stderr: "" };
  child.stdout?.on("data", (d) => (output.stdout += String(d)));
  child.stderr?.on("data", (d) => (output.stderr += String(d)));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  const end = Date.now() + timeout;
  try {
    while (Date.now() < end) {
      if (exitCode !== undefined) return { how: "exited" as const, code: exitCode, ...output };
      // A Unix socket (LMTP): the start-up line says it listens.
      if (ports.length === 0 && /listening on \.?\//.test(output.stderr))
        return { how: "served" as const, code: null, ...output };
      for (const port of ports) {
        if (!(await listening(port))) continue;
        const reply = await nodemailer
          .createTransport({
            host: "127.0.0.1",
            port,
            secure: implicitTls,
            tls: { rejectUnauthorized: false },
          })
          .sendMail({
            from: "alice@example.com",
            to: "bob@example.com",
            subject: "README",
            text: "from the README test",
          })
          .then(
            (info) => info.response,
            (error: { responseCode?: number; message: string }) => {
              output.stderr += `\n[README test's client] ${error.message}\n`;
              return error.responseCode ? `${error.responseCode} ${error.message}` : null;
            },
          );
        // No reply: the example may just have closed its server and exited by itself.
        if (reply === null) {
          const code = await Promise.race([
            exited,
            new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000)),
          ]);
          if (code !== undefined) return { how: "exited" as const, code, ...output };
          return { how: "no reply" as const, code: null, ...output };
        }
        await new Promise((r) => setTimeout(r, 200));
        if (exitCode !== undefined) return { how: "exited" as const, code: exitCode, ...output };
        return { how: "served" as const, code: null, reply, ...output };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { how: "timed out" as const, code: null, ...output };
  } finally {
    if (child.exitCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
  }
}

describe("README examples run as written", () => {
  it("finds the examples", () => {
    expect(all.length).toBeGreaterThan(10);
  });

  it.each(all.map((s) => [s.id, s]))(
    "%s",
    { timeout: suiteTimeout + 30_000 },
    async (_id, snippet) => {
      if (snippet.skip) {
        // An explicit, visible opt-out in the README: nothing to run.
        expect(snippet.skip.length).toBeGreaterThan(3);
        return;
      }
      const dir = prepare(snippet.id);
      const result = await exercise(
        launch(snippet, dir),
        portsIn(snippet.code),
        /(^|[{,]\s*)smtps:/m.test(snippet.code),
        // A test-file example runs a whole suite (the compliance cases take a minute on a busy machine).
        snippet.runtime === "vitest" ? suiteTimeout : 30_000,
      );
      const detail = `${snippet.id} (${snippet.runtime}) ${result.how}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
      expect(result.how === "exited" ? result.code === 0 : result.how === "served", detail).toBe(
        true,
      );
    },
  );
});

describe("README shell examples (`npx smtpkit` lines) run", () => {
  it.each(shellExamples().map((e) => [e.id, e]))("%s", async (_id, example) => {
    const dir = prepare(example.id);
    const child = spawn("sh", ["-c", example.command], {
      cwd: dir,
      detached: true,
      env: { ...process.env },
    });
    const ports = portsIn(example.command);
    const result = await exercise(
      child,
      ports.length > 0 || /-l \.?\//.test(example.command) ? ports : [8025],
      /--smtps/.test(example.command),
    );
    const detail = `${example.command}: ${result.how}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
    expect(result.how === "exited" ? result.code === 0 : result.how === "served", detail).toBe(
      true,
    );
  });
});

describe("README examples typecheck under strict", () => {
  const typed = all.filter((s) => s.language === "ts" && !s.skip);

  it.each([
    ["Node and vitest", ["node", "vitest"], ["node"]],
    ["Bun", ["bun"], ["bun-types"]],
  ] as const)("%s examples: tsc --strict", async (name, runtimes, types) => {
    const selected = typed.filter((s) => (runtimes as readonly string[]).includes(s.runtime));
    expect(selected.length).toBeGreaterThan(0);
    const dir = prepare(`typecheck-${name.split(" ")[0]?.toLowerCase()}`);
    const files = selected.map((s, i) => {
      const file = `snippet-${i}.ts`;
      writeFileSync(
        join(dir, file),
        `// ${s.id}\n${s.code}${/^(import|export) /m.test(s.code) ? "" : "export {};\n"}`,
      );
      return file;
    });
    writeFileSync(join(dir, "package.json"), `${JSON.stringify({ type: "module" })}\n`);
    const tsconfig = {
      compilerOptions: {
        target: "es2022",
        lib: ["es2022"],
        module: "nodenext",
        moduleResolution: "nodenext",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types,
      },
      files,
    };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
    const result = await run(bin("tsc"), ["-p", dir], { cwd: dir }).catch((error) => error);
    expect(
      `${result.stdout ?? ""}${result.stderr ?? ""}`,
      files.map((f, i) => `${f}: ${selected[i]?.id}`).join("\n"),
    ).toBe("");
  });

  it("Deno examples: deno check", async () => {
    const selected = typed.filter((s) => s.runtime === "deno");
    expect(selected.length).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const s of selected) {
      const dir = prepare(`deno-check-${s.id}`);
      writeFileSync(join(dir, "snippet.ts"), s.code);
      const result = await run(bin("deno"), ["check", "snippet.ts"], {
        cwd: dir,
        env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      }).catch((error) => error);
      if (result.code) problems.push(`${s.id}:\n${result.stderr}`);
    }
    expect(problems).toEqual([]);
  });
});
