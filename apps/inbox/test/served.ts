import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nodemailer from "nodemailer";
import { afterEach, beforeEach } from "vitest";
import { type InboxOptions, type RunningInbox, startInbox } from "../src/inbox.js";

/** A fresh inbox per test: SQLite in a temporary file, SMTP and HTTP on free ports. */
export function inboxForEachTest(options: InboxOptions = {}): {
  readonly inbox: RunningInbox;
  readonly dir: string;
} {
  const state: { inbox?: RunningInbox; dir?: string } = {};
  beforeEach(async () => {
    state.dir = mkdtempSync(join(tmpdir(), "smtpkit-inbox-"));
    state.inbox = await startInbox({
      path: join(state.dir, "inbox.sqlite"),
      smtpPort: 0,
      httpPort: 0,
      ...options,
    });
  });
  afterEach(async () => {
    await state.inbox?.close();
    if (state.dir) rmSync(state.dir, { recursive: true, force: true });
  });
  return {
    get inbox() {
      if (!state.inbox) throw new Error("no inbox: used outside a test");
      return state.inbox;
    },
    get dir() {
      return state.dir ?? "";
    },
  };
}

export function transport(inbox: RunningInbox, extra: Record<string, unknown> = {}) {
  return nodemailer.createTransport({
    host: "127.0.0.1",
    port: inbox.smtpPort,
    secure: false,
    ignoreTLS: true,
    ...extra,
  });
}

export async function api<T = unknown>(
  inbox: RunningInbox,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(`${inbox.httpUrl}${path}`, init);
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  return {
    status: response.status,
    body: (type.includes("json") ? JSON.parse(text) : text) as T,
    headers: response.headers,
  };
}

export const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
