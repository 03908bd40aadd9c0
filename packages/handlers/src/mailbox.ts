import { mkdirSync } from "node:fs";
import { type FileHandle, link, open, readdir, rename, rm, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import type {
  Envelope,
  Handler,
  HookResult,
  MessageBody,
  Session,
  SMTP,
} from "@smtpkit/core/server";
import { UsageError } from "./cli.js";
import { HeaderInserter } from "./header-insert.js";
import { peerFields } from "./message.js";
import { traceFields } from "./received.js";

/** Bytes gathered before one `write()` to the file. */
const WRITE_BUFFER = 256 * 1024;

let sequence = 0;

/** Maildir's `/` and `:` escapes for the host name part of a unique name. */
function safeHostname(): string {
  return hostname().replace(/\//g, "\\057").replace(/:/g, "\\072") || "localhost";
}

/**
 * A Maildir unique name, `time.MusecPpidQseqRrandom.host` (the Maildir specification's
 * recommendation, the `Q` counter as Python's `mailbox` writes it).
 */
export function uniqueName(now = performance.timeOrigin + performance.now()): string {
  const seconds = Math.floor(now / 1000);
  const micros = Math.floor((now * 1000) % 1_000_000);
  const random = Math.floor(Math.random() * 0x100000000)
    .toString(16)
    .padStart(8, "0");
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
  return `${seconds}.M${micros}P${pid}Q${sequence}R${random}.${safeHostname()}`;
}

export interface MailboxOptions {
  /**
   * `"lf"` (default): store with Unix line endings, as Python's `mailbox.Maildir.add()` (and so
   * aiosmtpd's Mailbox), qmail and Dovecot do. `"received"`: store the bytes exactly as received
   * (CRLF).
   */
  readonly lineEndings?: "lf" | "received" | undefined;
  /**
   * Append aiosmtpd's `X-Peer`, `X-MailFrom` and `X-RcptTo` fields to the header section, as
   * aiosmtpd's Mailbox does. Default true.
   */
  readonly addHeaders?: boolean | undefined;
  /**
   * Prepend the trace fields of final delivery: `Return-Path:` (the envelope sender) and
   * `Received:` (RFC 5321 §4.4). Default true.
   */
  readonly traceHeaders?: boolean | undefined;
  /** `fsync()` the file and the `new/` directory before answering 250. Default true. */
  readonly fsync?: boolean | undefined;
}

/** Where a message was delivered: its unique name (the Maildir key) and path in `new/`. */
export interface Delivery {
  readonly key: string;
  readonly path: string;
  /** Bytes written. */
  readonly size: number;
}

/**
 * aiosmtpd's `Mailbox`: delivers every message into a Maildir the way the Maildir specification
 * says. The body is streamed (`handleDATAStream`) into `tmp/<unique name>`, the file is synced to
 * disk, hard-linked (renamed, where links are not supported) into `new/`, the directory synced,
 * and only then does the client get `250 OK`. Any failure (disk full, the client disconnecting
 * mid-DATA, a size limit) removes the temporary file and answers `451 4.3.0`: a message that was
 * not acknowledged never shows up in `new/`, and nothing is left in `tmp/`.
 *
 * Memory use does not depend on the message size (the stream has backpressure; at most 256 KiB
 * are buffered for one write).
 */
export class Mailbox implements Handler {
  // Handler's `auth_*` index signature (custom AUTH mechanisms); classes must restate it.
  [hook: `auth_${string}`]: unknown;
  /** The Maildir, as given. */
  readonly mailDir: string;
  readonly options: MailboxOptions;
  readonly #root: string;

  /** Creates the Maildir (`tmp`, `new`, `cur`, mode 0700) if needed, as Python's `mailbox.Maildir`. */
  constructor(mailDir: string, options: MailboxOptions = {}) {
    this.mailDir = mailDir;
    this.options = options;
    this.#root = resolve(mailDir);
    for (const sub of ["", "tmp", "new", "cur"]) {
      mkdirSync(join(this.#root, sub), { recursive: true, mode: 0o700 });
    }
  }

  /** CLI: `-c Mailbox DIR`, aiosmtpd's usage errors. */
  static fromCli(args: readonly string[]): Mailbox {
    if (args.length < 1) throw new UsageError("The directory for the maildir is required");
    if (args.length > 1) throw new UsageError("Too many arguments for Mailbox handler");
    return new Mailbox(args[0] as string);
  }

  get tmpDir(): string {
    return join(this.#root, "tmp");
  }

  get newDir(): string {
    return join(this.#root, "new");
  }

  get curDir(): string {
    return join(this.#root, "cur");
  }

  async handleDATAStream(
    server: SMTP,
    session: Session,
    envelope: Envelope,
    body: MessageBody,
    _signal?: AbortSignal,
  ): Promise<HookResult> {
    const fields = this.options.addHeaders === false ? [] : peerFields(session, envelope);
    const trace =
      this.options.traceHeaders === false
        ? []
        : traceFields(server, session, envelope, { returnPath: true });
    try {
      await this.deliver(body, fields, trace);
    } catch (error) {
      const code = (error as { code?: unknown })?.code;
      const detail = typeof code === "string" && /^E[A-Z]+$/.test(code) ? ` (${code})` : "";
      return `451 4.3.0 Error: cannot store the message${detail}`;
    }
    return "250 OK";
  }

  /**
   * Delivers one message: `fields` are appended to its header section and `prepend` put before
   * it, the bytes go to `tmp/`, then into `new/`. Rejects (having removed the temporary file) if
   * anything fails.
   */
  async deliver(
    source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array,
    fields: readonly (readonly [string, string])[] = [],
    prepend: readonly (readonly [string, string])[] = [],
  ): Promise<Delivery> {
    const key = uniqueName();
    const tmpPath = join(this.tmpDir, key);
    const newPath = join(this.newDir, key);
    const sync = this.options.fsync !== false;
    // "wx": O_EXCL, never overwrite; 0600 like Dovecot and Python's mailbox.
    const file = await open(tmpPath, "wx", 0o600);
    let size = 0;
    let linked = false;
    try {
      const inserter =
        fields.length > 0 || prepend.length > 0 ? new HeaderInserter(fields, prepend) : null;
      const writer = new FileWriter(
        (data) => this.writeChunk(file, data),
        this.options.lineEndings !== "received",
      );
      for await (const chunk of iterate(source)) {
        if (inserter && !inserter.done) {
          for (const part of inserter.push(chunk)) await writer.write(part);
        } else {
          await writer.write(chunk);
        }
      }
      if (inserter) for (const part of inserter.end()) await writer.write(part);
      await writer.end();
      size = writer.size;
      if (sync) await file.sync();
      await file.close();
      linked = await moveIntoNew(tmpPath, newPath);
      if (sync) await syncDirectory(this.newDir);
    } catch (error) {
      await file.close().catch(() => undefined);
      if (linked) await unlink(newPath).catch(() => undefined);
      await unlink(tmpPath).catch(() => undefined);
      throw error;
    }
    return { key, path: newPath, size };
  }

  /**
   * Writes one buffer to the temporary file. A subclass may override it (to count, throttle, or
   * to simulate a failing disk in a test).
   */
  protected async writeChunk(file: FileHandle, data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await file.write(data, offset, data.length - offset);
      offset += bytesWritten;
    }
  }

  /** The keys (file names) of the messages in `new/` and `cur/`. */
  async keys(): Promise<string[]> {
    const names: string[] = [];
    for (const dir of [this.newDir, this.curDir]) {
      for (const name of await readdir(dir)) if (!name.startsWith(".")) names.push(name);
    }
    return names.sort();
  }

  /** aiosmtpd's `reset()` (`Maildir.clear()`): removes every message in `new/` and `cur/`. */
  async reset(): Promise<void> {
    for (const dir of [this.newDir, this.curDir]) {
      for (const name of await readdir(dir)) {
        if (!name.startsWith(".")) await rm(join(dir, name), { force: true });
      }
    }
  }
}

async function* iterate(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array,
): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  if (Symbol.asyncIterator in source) {
    yield* source as AsyncIterable<Uint8Array>;
    return;
  }
  const reader = (source as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    // Stop the stream if delivery gave up early (the server then drops the rest of the body).
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/**
 * Maildir delivery's "link, then unlink": `link()` never replaces an existing file. Where the
 * file system has no hard links, `rename()` (what Python's `mailbox` falls back to as well).
 * Returns true once the message is in `new/`.
 */
async function moveIntoNew(tmpPath: string, newPath: string): Promise<boolean> {
  try {
    await link(tmpPath, newPath);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") {
      throw error;
    }
    await rename(tmpPath, newPath);
    return true;
  }
  // The message is safely in new/; a temporary file left behind would only be cleaned up later.
  await unlink(tmpPath).catch(() => undefined);
  return true;
}

/** `fsync()` on a directory, so a new entry survives a crash (not possible on Windows: skipped). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(dir, "r");
  } catch (error) {
    if (isUnsupported(error)) return;
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    if (!isUnsupported(error)) throw error;
  } finally {
    await handle.close();
  }
}

function isUnsupported(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === "EISDIR" || code === "EPERM" || code === "EINVAL" || code === "ENOTSUP";
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Gathers the message into one 256 KiB buffer so the file gets few large writes, converting CRLF
 * to LF in place when asked (`copyWithin`, no per-line objects: a 200 MB message must not churn
 * the garbage collector).
 */
export class FileWriter {
  readonly #buffer: Uint8Array;
  readonly #write: (data: Uint8Array) => Promise<void>;
  readonly #lf: boolean;
  #used = 0;
  /** The last byte in the buffer is a CR whose LF may come with the next write. */
  #crAtEnd = false;
  /** Bytes written to the file. */
  size = 0;

  constructor(write: (data: Uint8Array) => Promise<void>, lf: boolean, bufferSize = WRITE_BUFFER) {
    this.#write = write;
    this.#lf = lf;
    this.#buffer = new Uint8Array(bufferSize);
  }

  async write(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      if (this.#crAtEnd) {
        this.#crAtEnd = false;
        // A CRLF split across writes: drop the CR, the LF takes its place.
        if (data[offset] === LF) this.#used--;
      }
      if (this.#used === this.#buffer.length) await this.#flush();
      const n = Math.min(this.#buffer.length - this.#used, data.length - offset);
      this.#buffer.set(
        offset === 0 && n === data.length ? data : data.subarray(offset, offset + n),
        this.#used,
      );
      const start = this.#used;
      this.#used += n;
      offset += n;
      if (this.#lf) this.#compact(start);
    }
  }

  /** Removes the CR of every CRLF in `buffer[start, used)`. */
  #compact(start: number): void {
    const buffer = this.#buffer;
    const used = this.#used;
    let src = buffer.indexOf(CR, start);
    if (src === -1 || src >= used) return;
    let dst = src;
    while (src < used) {
      // buffer[src] is a CR.
      if (src === used - 1) {
        buffer[dst++] = CR;
        this.#crAtEnd = true;
        break;
      }
      if (buffer[src + 1] === LF) src++;
      const next = buffer.indexOf(CR, src + 1);
      const end = next === -1 || next >= used ? used : next;
      buffer.copyWithin(dst, src, end);
      dst += end - src;
      src = end;
    }
    this.#used = dst;
  }

  async #flush(): Promise<void> {
    if (this.#used === 0) return;
    await this.#write(this.#buffer.subarray(0, this.#used));
    this.size += this.#used;
    this.#used = 0;
  }

  /** The end of the message: writes everything (a final CR stays a bare CR). */
  async end(): Promise<void> {
    this.#crAtEnd = false;
    await this.#flush();
  }
}
