/// <reference types="vite/client" />
/**
 * @smtpkit/core runs unchanged on Node, Deno, Bun and in browsers/workers (beyond.md §2), so no
 * file under src/ may import a Node built-in (`node:*` or bare `fs`, `net`, `tls`, `buffer`, ...),
 * any package, or use `Buffer`, `process` or `require(`. Only relative imports are allowed.
 * The sources are loaded through Vite (`?raw`), so this test itself needs no file system.
 */
import { describe, expect, it } from "vitest";

const SOURCES = import.meta.glob<string>("../src/**/*.ts", {
  query: "?raw",
  import: "default",
  eager: true,
});

/** Node's built-in module names (those a runtime-free library could be tempted to import). */
const NODE_BUILTINS = [
  "assert",
  "async_hooks",
  "buffer",
  "child_process",
  "cluster",
  "console",
  "constants",
  "crypto",
  "dgram",
  "diagnostics_channel",
  "dns",
  "domain",
  "events",
  "fs",
  "http",
  "http2",
  "https",
  "inspector",
  "module",
  "net",
  "os",
  "path",
  "perf_hooks",
  "process",
  "punycode",
  "querystring",
  "readline",
  "repl",
  "stream",
  "string_decoder",
  "sys",
  "timers",
  "tls",
  "trace_events",
  "tty",
  "url",
  "util",
  "v8",
  "vm",
  "wasi",
  "worker_threads",
  "zlib",
];

/** Blanks out comments (and, unless `keepStrings`, string contents), keeping line structure. */
function codeOnly(source: string, keepStrings = false): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end === -1 ? source.length : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      out += c;
      i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === "\\") {
          out += keepStrings ? source.slice(i, i + 2) : "  ";
          i += 2;
          continue;
        }
        out += keepStrings || source[i] === "\n" ? source[i] : " ";
        i++;
      }
      out += c;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every module specifier in import/export-from/dynamic import/require, with its line. */
function specifiers(source: string): { spec: string; line: number }[] {
  const found: { spec: string; line: number }[] = [];
  const patterns = [
    /\bimport\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']/g,
    /\bexport\s+(?:type\s+)?[\w*{}\s,$]*?\s+from\s+["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) {
      found.push({
        spec: match[1] as string,
        line: source.slice(0, match.index).split("\n").length,
      });
    }
  }
  return found;
}

function problems(path: string, source: string): string[] {
  const out: string[] = [];
  for (const { spec, line } of specifiers(codeOnly(source, true))) {
    const base = spec.replace(/^node:/, "").split("/")[0] ?? "";
    if (spec.startsWith("node:")) out.push(`${path}:${line} imports ${spec}`);
    else if (NODE_BUILTINS.includes(base))
      out.push(`${path}:${line} imports the Node built-in ${spec}`);
    else if (!spec.startsWith("./") && !spec.startsWith("../"))
      out.push(`${path}:${line} imports the package ${spec}`);
  }
  const code = codeOnly(source);
  for (const [index, text] of code.split("\n").entries()) {
    if (/(?<![.\w$])Buffer\b/.test(text)) out.push(`${path}:${index + 1} uses Buffer`);
    if (/(?<![.\w$])process\b/.test(text)) out.push(`${path}:${index + 1} uses process`);
    if (/(?<![.\w$])require\s*\(/.test(text)) out.push(`${path}:${index + 1} uses require(`);
    if (
      /\bimport\s*\(/.test(text) &&
      !/\bimport\s*\(\s*["']\.\.?\//.test(source.split("\n")[index] ?? "")
    ) {
      out.push(`${path}:${index + 1} uses a dynamic import`);
    }
    if (/\b__dirname\b|\b__filename\b/.test(text))
      out.push(`${path}:${index + 1} uses __dirname/__filename`);
    if (/\b(?:Deno|Bun)\s*\./.test(text)) out.push(`${path}:${index + 1} uses a runtime global`);
  }
  return out;
}

describe("no runtime imports in packages/core/src", () => {
  const files = Object.entries(SOURCES);

  it("finds the sources", () => {
    expect(files.length).toBeGreaterThanOrEqual(15);
    expect(files.some(([path]) => path.endsWith("/engine/connection.ts"))).toBe(true);
    expect(files.some(([path]) => path.includes("/engine/commands/"))).toBe(true);
    expect(files.some(([path]) => path.includes("/syntax/"))).toBe(true);
    expect(files.some(([path]) => path.includes("/server/"))).toBe(true);
  });

  it.each(files)("%s", (path, source) => {
    expect(problems(path, source)).toEqual([]);
  });

  describe("the checker itself", () => {
    it.each([
      ['import { readFile } from "node:fs/promises";', "imports node:fs/promises"],
      ["import net from 'net';", "Node built-in net"],
      ['import * as tls from "tls";', "Node built-in tls"],
      ['import type { X } from "buffer";', "Node built-in buffer"],
      ['export { x } from "events";', "Node built-in events"],
      ['import "zlib";', "Node built-in zlib"],
      ['import fc from "fast-check";', "package fast-check"],
      ['import { a } from "@smtpkit/auth";', "package @smtpkit/auth"],
      ['const fs = require("fs");', "uses require("],
      ["const b = Buffer.from(x);", "uses Buffer"],
      ["if (process.env.X) {}", "uses process"],
      ['const m = await import("node:net");', "imports node:net"],
      ["const d = __dirname;", "__dirname"],
      ["Deno.listen({ port: 25 });", "runtime global"],
    ])("flags %s", (code, message) => {
      const found = problems("x.ts", code);
      expect(found.join("\n")).toContain(message);
    });

    it.each([
      'import { a } from "./a.js";',
      'export { b } from "../b.js";',
      'import type { C } from "./c.js";',
      "// Buffer and process in a comment are fine",
      "/* require('fs') in a block comment */",
      'const text = "processed by require(x) and Buffer";',
      "this.process(); obj.Buffer; x.require",
      "const processed = 1; const reprocess = 2;",
    ])("accepts %s", (code) => {
      expect(problems("x.ts", code)).toEqual([]);
    });
  });
});
