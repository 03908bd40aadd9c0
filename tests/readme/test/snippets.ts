// Finds the examples in every README: fenced ts/js blocks, and sh blocks' `npx smtpkit` lines.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../../..", import.meta.url));

export type Runtime = "node" | "deno" | "bun" | "vitest";

export interface Snippet {
  /** e.g. "packages/node/README.md:7" (the line of the opening fence). */
  id: string;
  code: string;
  language: "ts" | "js";
  runtime: Runtime;
  /** The reason given by a `// readme-test: skip <reason>` first line, if any. */
  skip: string | undefined;
}

export interface ShellExample {
  id: string;
  command: string;
}

export function readmes(): string[] {
  const files = [join(root, "README.md")];
  for (const group of ["packages", "apps"]) {
    for (const name of readdirSync(join(root, group)).sort()) {
      const file = join(root, group, name, "README.md");
      if (existsSync(file)) files.push(file);
    }
  }
  return files;
}

const LANGUAGES: Record<string, "ts" | "js"> = {
  ts: "ts",
  typescript: "ts",
  js: "js",
  javascript: "js",
};

function blocks(file: string): { info: string; line: number; body: string }[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const found: { info: string; line: number; body: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i] ?? "");
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ""); i++) body.push(lines[i] ?? "");
    found.push({ info: open[1] ?? "", line: start + 1, body: `${body.join("\n")}\n` });
  }
  return found;
}

function runtimeOf(code: string): Runtime {
  if (/from "vitest"/.test(code)) return "vitest";
  if (/@smtpkit\/deno|\bDeno\./.test(code)) return "deno";
  if (/@smtpkit\/bun|\bBun\./.test(code)) return "bun";
  return "node";
}

export function snippets(): Snippet[] {
  return readmes().flatMap((file) =>
    blocks(file).flatMap(({ info, line, body }) => {
      const language = LANGUAGES[info.toLowerCase()];
      if (!language) return [];
      const skip = /^\/\/ readme-test: skip (.+)$/m.exec(body.split("\n")[0] ?? "")?.[1];
      return [
        {
          id: `${relative(root, file)}:${line}`,
          code: body,
          language,
          runtime: runtimeOf(body),
          skip,
        },
      ];
    }),
  );
}

/** Lines of sh blocks that start with `npx smtpkit`: each is run (see CONTRIBUTING.md). */
export function shellExamples(): ShellExample[] {
  return readmes().flatMap((file) =>
    blocks(file).flatMap(({ info, line, body }) => {
      if (!["sh", "bash", "shell"].includes(info)) return [];
      return body
        .split("\n")
        .map((text, offset) => ({ text: text.trim(), offset }))
        .filter(({ text }) => text.startsWith("npx smtpkit"))
        .map(({ text, offset }) => ({
          id: `${relative(root, file)}:${line + 1 + offset}`,
          command: text,
        }));
    }),
  );
}

/** The ports a snippet listens on as written (`port: 8025`, `-l :2525`). */
export function portsIn(code: string): number[] {
  const ports = new Set<number>();
  for (const match of code.matchAll(/port:\s*(\d{2,5})\b|-l \S*:(\d{2,5})\b/g)) {
    const port = Number(match[1] ?? match[2]);
    if (port > 0) ports.add(port);
  }
  return [...ports];
}
