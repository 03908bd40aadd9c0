/**
 * The dialog corpus format and its replay over raw sockets.
 *
 * A dialog file (`test/dialogs/*.txt`) holds one client line per line, sent with CRLF. Lines that
 * start with `# ` (or are just `#`) are comments. Directives start with `@`:
 *
 *   @profile NAME     the server configuration (see differential.test.ts); default `cli`
 *   @batch … @end     send the lines in between in one write (pipelining), then read the replies
 *   @repeat N LINE    send LINE N times in one write; the replies are summarised (`250 OK ×N`)
 *   @raw TEXT         send TEXT without adding CRLF, then take a reply if one comes
 *   @wait SECONDS     sleep, then record whatever the server sent meanwhile and whether it closed
 *   @starttls         upgrade the connection to TLS (after a 220 to STARTTLS)
 *
 * Inside lines, `{CR}`, `{LF}`, `{TAB}`, `{NUL}`, `{SP}`, `{0xHH}` (one raw byte) and
 * `{TEXT*N}` (TEXT repeated N times) are expanded; anything else is sent as UTF-8.
 *
 * The client follows the server: after a `354` reply it is in DATA mode, where lines get no
 * reply until the lone `.`. Each server is driven by its own replies, so the steps of two runs
 * always line up by file line even when the servers disagree.
 */
import { readFileSync } from "node:fs";
import { RawClient, type ReplyLines, sleep } from "./helpers.js";

export type Step =
  | { kind: "line"; lineNo: number; text: string; bytes: Buffer }
  | { kind: "raw"; lineNo: number; text: string; bytes: Buffer }
  | { kind: "batch"; lineNo: number; lines: { lineNo: number; text: string; bytes: Buffer }[] }
  | { kind: "repeat"; lineNo: number; count: number; text: string; bytes: Buffer }
  | { kind: "wait"; lineNo: number; seconds: number }
  | { kind: "starttls"; lineNo: number };

export interface Dialog {
  readonly name: string;
  readonly profile: string;
  readonly steps: Step[];
  /** The comment block at the top: what the dialog covers. */
  readonly description: string;
}

/** Expands the `{…}` macros of a dialog line into bytes. */
export function expand(text: string): Buffer {
  const parts: Buffer[] = [];
  const pattern = /\{(CR|LF|TAB|NUL|SP|0x[0-9A-Fa-f]{2}|[^{}*]+\*\d+)\}/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    parts.push(Buffer.from(text.slice(last, match.index), "utf8"));
    const macro = match[1] ?? "";
    const named: Record<string, string> = { CR: "\r", LF: "\n", TAB: "\t", NUL: "\0", SP: " " };
    if (macro in named) parts.push(Buffer.from(named[macro] ?? "", "latin1"));
    else if (macro.startsWith("0x")) parts.push(Buffer.from([Number.parseInt(macro.slice(2), 16)]));
    else {
      const star = macro.lastIndexOf("*");
      parts.push(Buffer.from(macro.slice(0, star).repeat(Number(macro.slice(star + 1))), "utf8"));
    }
    last = (match.index ?? 0) + match[0].length;
  }
  parts.push(Buffer.from(text.slice(last), "utf8"));
  return Buffer.concat(parts);
}

export function parseDialog(name: string, source: string): Dialog {
  const lines = source.replace(/\r?\n$/, "").split(/\r?\n/);
  const steps: Step[] = [];
  let profile = "cli";
  let batch: Extract<Step, { kind: "batch" }> | null = null;
  const description: string[] = [];
  let header = true;
  for (const [index, text] of lines.entries()) {
    const lineNo = index + 1;
    if (text === "#" || text.startsWith("# ")) {
      if (header) description.push(text.replace(/^# ?/, ""));
      continue;
    }
    header = false;
    if (text.startsWith("@")) {
      const [directive = "", ...rest] = text.split(" ");
      const argument = rest.join(" ");
      switch (directive) {
        case "@profile":
          profile = argument;
          continue;
        case "@batch":
          if (batch) throw new Error(`${name}:${lineNo}: nested @batch`);
          batch = { kind: "batch", lineNo, lines: [] };
          continue;
        case "@end":
          if (!batch) throw new Error(`${name}:${lineNo}: @end without @batch`);
          steps.push(batch);
          batch = null;
          continue;
        case "@repeat": {
          const [count = "", ...line] = rest;
          const joined = line.join(" ");
          steps.push({
            kind: "repeat",
            lineNo,
            count: Number(count),
            text: joined,
            bytes: expand(joined),
          });
          continue;
        }
        case "@raw":
          steps.push({ kind: "raw", lineNo, text: argument, bytes: expand(argument) });
          continue;
        case "@wait":
          steps.push({ kind: "wait", lineNo, seconds: Number(argument) });
          continue;
        case "@starttls":
          steps.push({ kind: "starttls", lineNo });
          continue;
        default:
          throw new Error(`${name}:${lineNo}: unknown directive ${directive}`);
      }
    }
    const step = { lineNo, text, bytes: expand(text) };
    if (batch) batch.lines.push(step);
    else steps.push({ kind: "line", ...step });
  }
  if (batch) throw new Error(`${name}: @batch without @end`);
  return { name, profile, steps, description: description.join("\n").trim() };
}

export function loadDialog(path: string, name: string): Dialog {
  return parseDialog(name, readFileSync(path, "utf8"));
}

/** What one server answered at one dialog line. */
export interface Exchange {
  readonly lineNo: number;
  /** The client line as written in the file (or a directive). */
  readonly client: string;
  /** The reply's lines joined by "\n"; several replies joined by " | "; or a marker. */
  readonly reply: string;
}

export const NO_REPLY_EXPECTED = "—";
export const NO_REPLY = "(no reply)";
export const CLOSED = "(closed)";
export const OPEN = "(open)";

export interface ReplayOptions {
  readonly port: number;
  readonly tls?: boolean;
  /** How long to wait for a reply before recording `(no reply)`. */
  readonly replyTimeoutMs?: number;
  /** After the reply that ends a message, also collect replies that follow (LMTP). */
  readonly extraRepliesAfterData?: boolean;
}

const render = (reply: ReplyLines) => reply.join("\n");

/** Summarises a run of replies: identical consecutive ones become `TEXT ×N`. */
function summarise(replies: string[]): string {
  const out: string[] = [];
  let previous: string | null = null;
  let count = 0;
  const flush = () => {
    if (previous !== null) out.push(count > 1 ? `${previous} ×${count}` : previous);
  };
  for (const reply of replies) {
    if (reply === previous) count++;
    else {
      flush();
      previous = reply;
      count = 1;
    }
  }
  flush();
  return out.join(" | ");
}

/** Replays a dialog against one server; never throws for anything the server does. */
export async function replay(dialog: Dialog, options: ReplayOptions): Promise<Exchange[]> {
  const timeout = options.replyTimeoutMs ?? 2_000;
  const exchanges: Exchange[] = [];
  const client = await RawClient.connect(options.port, { tls: options.tls ?? false });
  let dataMode = false;
  let lastCode = 0;

  const take = async (ms = timeout): Promise<string> => {
    const reply = await client.reply(ms);
    if (reply === null) return client.closed ? CLOSED : NO_REPLY;
    lastCode = Number.parseInt(reply[reply.length - 1]?.slice(0, 3) ?? "0", 10);
    return render(reply);
  };
  /** Any further replies that arrive within a short quiet period. */
  const drain = async (quietMs: number): Promise<string[]> => {
    const extra: string[] = [];
    for (;;) {
      const reply = await client.reply(quietMs);
      if (reply === null) return extra;
      extra.push(render(reply));
    }
  };

  /** Sends one line in the current mode and returns what to record for it. */
  const lineResult = async (endsMessage: boolean): Promise<string> => {
    const reply = await take();
    if (lastCode === 354 && reply !== CLOSED && reply !== NO_REPLY) dataMode = true;
    if (endsMessage && options.extraRepliesAfterData) {
      const extra = await drain(300);
      return [reply, ...extra].join(" | ");
    }
    return reply;
  };

  exchanges.push({ lineNo: 0, client: "(connect)", reply: await take() });

  for (const step of dialog.steps) {
    if (client.closed && step.kind !== "wait") {
      const label = step.kind === "batch" ? step.lines.map((l) => l.text).join(" ⏎ ") : "";
      exchanges.push({ lineNo: step.lineNo, client: describe(step, label), reply: CLOSED });
      continue;
    }
    switch (step.kind) {
      case "line": {
        client.write(Buffer.concat([step.bytes, Buffer.from("\r\n")]));
        if (dataMode) {
          if (step.text === ".") {
            dataMode = false;
            exchanges.push({
              lineNo: step.lineNo,
              client: step.text,
              reply: await lineResult(true),
            });
          } else {
            exchanges.push({ lineNo: step.lineNo, client: step.text, reply: NO_REPLY_EXPECTED });
          }
        } else {
          exchanges.push({
            lineNo: step.lineNo,
            client: step.text,
            reply: await lineResult(false),
          });
        }
        break;
      }
      case "raw": {
        client.write(step.bytes);
        const reply = await take(dataMode ? 300 : 1_000);
        if (lastCode === 354 && !dataMode) dataMode = true;
        // Raw bytes may hold several commands: collect every reply they produce.
        const extra = reply === NO_REPLY || reply === CLOSED ? [] : await drain(200);
        exchanges.push({
          lineNo: step.lineNo,
          client: `@raw ${step.text}`,
          reply: [reply, ...extra].join(" | "),
        });
        break;
      }
      case "batch": {
        client.write(
          Buffer.concat(step.lines.flatMap((line) => [line.bytes, Buffer.from("\r\n")])),
        );
        // Each line in order; body lines after a 354 expect nothing.
        for (const line of step.lines) {
          if (client.closed && client.pending() === "") {
            exchanges.push({ lineNo: line.lineNo, client: line.text, reply: CLOSED });
            continue;
          }
          if (dataMode) {
            if (line.text === ".") {
              dataMode = false;
              exchanges.push({
                lineNo: line.lineNo,
                client: line.text,
                reply: await lineResult(true),
              });
            } else {
              exchanges.push({ lineNo: line.lineNo, client: line.text, reply: NO_REPLY_EXPECTED });
            }
            continue;
          }
          exchanges.push({
            lineNo: line.lineNo,
            client: line.text,
            reply: await lineResult(false),
          });
        }
        break;
      }
      case "repeat": {
        const line = Buffer.concat([step.bytes, Buffer.from("\r\n")]);
        client.write(Buffer.concat(Array.from({ length: step.count }, () => line)));
        const replies: string[] = [];
        for (let i = 0; i < step.count; i++) {
          const reply = await take();
          replies.push(reply);
          if (reply === CLOSED || reply === NO_REPLY) break;
        }
        exchanges.push({
          lineNo: step.lineNo,
          client: describe(step, ""),
          reply: summarise(replies),
        });
        break;
      }
      case "wait": {
        await sleep(step.seconds * 1_000);
        const replies = await drain(100);
        const closed = client.closed || (await client.waitClosed(200));
        exchanges.push({
          lineNo: step.lineNo,
          client: describe(step, ""),
          reply: [...replies, closed ? CLOSED : OPEN].join(" | "),
        });
        break;
      }
      case "starttls": {
        let result = "(tls)";
        if (lastCode !== 220) result = `(no TLS: last reply was ${lastCode})`;
        else {
          try {
            await Promise.race([
              client.startTls(),
              sleep(5_000).then(() => {
                throw new Error("handshake timed out");
              }),
            ]);
          } catch (error) {
            result = `(TLS failed: ${(error as Error).message})`;
          }
        }
        exchanges.push({ lineNo: step.lineNo, client: "@starttls", reply: result });
        break;
      }
    }
  }
  const closed = client.closed || (await client.waitClosed(200));
  exchanges.push({ lineNo: -1, client: "(end)", reply: closed ? CLOSED : OPEN });
  client.close();
  return exchanges;
}

function describe(step: Step, label: string): string {
  switch (step.kind) {
    case "line":
      return step.text;
    case "raw":
      return `@raw ${step.text}`;
    case "batch":
      return label;
    case "repeat":
      return `@repeat ${step.count} ${step.text}`;
    case "wait":
      return `@wait ${step.seconds}`;
    case "starttls":
      return "@starttls";
  }
}
