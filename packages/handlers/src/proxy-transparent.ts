/**
 * The Proxy's transparent mode for one client connection: the upstream session opens at MAIL and
 * follows the client's dialog step by step, so every reply the client gets is the upstream's (MAIL,
 * each RCPT, DATA, the final reply). One upstream connection serves every transaction of the
 * client's session (RSET between them when one was left open); it closes with the client's.
 */
import { reply as makeReply, type Reply } from "@smtpkit/core";
import type { BodyReader, MessageBody } from "@smtpkit/core/server";
import { DotStuffer } from "./dot-stuffing.js";
import { PeerInserter } from "./peer-inserter.js";
import { UpstreamClient, type UpstreamClientOptions, UpstreamError } from "./upstream-client.js";

/** A MAIL or RCPT parameter as the client sent it. */
interface Param {
  readonly keyword: string;
  readonly text: string;
}

export class TransparentRelay {
  readonly #options: UpstreamClientOptions;
  readonly #signal: AbortSignal;
  #client: UpstreamClient | null = null;
  /** The upstream accepted a MAIL and has not finished that transaction. */
  #transaction = false;
  /** Recipients the upstream accepted in this transaction (an LMTP upstream answers each after the body). */
  #accepted = 0;
  /** A command or a body is on its way: closing now cannot send QUIT. */
  #busy = false;
  #closed = false;
  /** Upstream connections opened for this client connection. */
  connections = 0;

  constructor(options: UpstreamClientOptions, signal: AbortSignal) {
    this.#options = options;
    this.#signal = signal;
  }

  /** MAIL: the upstream's reply, after connecting (or reusing the connection, RSET first). */
  async mail(address: string, mailOptions: readonly string[]): Promise<Reply> {
    const params = parseParams(mailOptions);
    for (let attempt = 0; ; attempt++) {
      let client: UpstreamClient;
      let reused: boolean;
      try {
        ({ client, reused } = await this.#ready());
      } catch (error) {
        return unavailable(error);
      }
      const passed = mailParams(client, params);
      if ("refusal" in passed) return passed.refusal;
      const line = `MAIL FROM:<${address === "<>" ? "" : address}>${passed.text}`;
      this.#busy = true;
      try {
        let replies: Reply[];
        if (!this.#transaction) replies = [await client.command(line)];
        else if (client.offers("PIPELINING")) replies = await client.pipeline(["RSET", line]);
        else replies = [await client.command("RSET"), await client.command(line)];
        if (replies.length === 2 && replies[0]?.code !== 250) {
          throw new UpstreamError("EPROTOCOL", `RSET refused: ${replies[0]?.code}`);
        }
        this.#transaction = false;
        this.#accepted = 0;
        const reply = replies[replies.length - 1] as Reply;
        if (reply.code >= 200 && reply.code < 300) this.#transaction = true;
        return this.#passOn(reply);
      } catch (error) {
        this.#drop();
        // A reused connection the upstream gave up on while idle: once more on a new one.
        if (reused && attempt === 0 && !this.#signal.aborted) continue;
        return lost(error);
      } finally {
        this.#busy = false;
      }
    }
  }

  /** RCPT: the upstream's reply for this recipient. */
  async rcpt(address: string, rcptOptions: readonly string[]): Promise<Reply> {
    const client = this.#client;
    if (!client || !this.#transaction) return lost(null);
    this.#busy = true;
    try {
      const params = rcptParams(client, parseParams(rcptOptions));
      const reply = await client.command(`RCPT TO:<${address}>${params}`);
      if (reply.code >= 200 && reply.code < 300) this.#accepted++;
      return this.#passOn(reply);
    } catch (error) {
      this.#drop();
      return lost(error);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * DATA: the body streamed to the upstream (`X-Peer` inserted, dot-stuffed, CRLF), read no faster
   * than the upstream takes it; the upstream's final reply (an LMTP upstream's, one per accepted
   * recipient). A body the client does not complete
   * (limit, RSET, hang-up) never gets its final dot: the upstream connection is closed instead.
   */
  async data(body: MessageBody, peerHost: string, trace: string | null): Promise<Reply | Reply[]> {
    const client = this.#client;
    const reader = body.getReader();
    if (!client || !this.#transaction) {
      await reader.cancel().catch(() => undefined);
      return lost(null);
    }
    this.#busy = true;
    try {
      const ready = await client.command("DATA");
      if (ready.code !== 354) {
        await reader.cancel().catch(() => undefined);
        return this.#passOn(ready);
      }
      const outcome = await send(client, reader, peerHost, trace);
      if (outcome === "bodyFailed") {
        this.#drop();
        return lost(null);
      }
      const timeout = this.#options.dataTimeout ?? 600_000;
      if (this.#options.lmtp) {
        const finals: Reply[] = [];
        for (let i = 0; i < this.#accepted; i++) finals.push(await client.read(timeout));
        this.#transaction = false;
        return finals.map((reply) => this.#passOn(reply));
      }
      const final = await client.read(timeout);
      this.#transaction = false;
      return this.#passOn(final);
    } catch (error) {
      // An upstream that refused the body before its end (and closed) said why: pass that on.
      const early = client.takeUnsolicited();
      this.#drop();
      await reader.cancel().catch(() => undefined);
      return early && early.code >= 400 ? upstreamAnswer(early) : lost(error);
    } finally {
      this.#busy = false;
    }
  }

  /** The client's session is over: QUIT upstream (or just close, mid-command). Never rejects. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    this.#transaction = false;
    if (!client) return;
    if (this.#busy) client.destroy();
    else await client.quit();
  }

  /** The connection to use: the open one when the upstream still has it, else a new one. */
  async #ready(): Promise<{ client: UpstreamClient; reused: boolean }> {
    if (this.#closed) throw new UpstreamError("ECLOSED", "client connection closed");
    const current = this.#client;
    if (current?.usable) return { client: current, reused: true };
    if (current) this.#drop();
    this.connections++;
    const client = await UpstreamClient.open(this.#options, this.#signal);
    if (this.#closed) {
      client.destroy();
      throw new UpstreamError("ECLOSED", "client connection closed");
    }
    this.#client = client;
    this.#transaction = false;
    return { client, reused: false };
  }

  /** An upstream reply for our client; a 421 (the upstream closing) also ends the connection. */
  #passOn(reply: Reply): Reply {
    if (reply.code === 421) this.#drop();
    return upstreamAnswer(reply);
  }

  #drop(): void {
    this.#client?.destroy();
    this.#client = null;
    this.#transaction = false;
  }
}

/** Streams the body; `"bodyFailed"` when the client's side of it failed (the reader rejected). */
async function send(
  client: UpstreamClient,
  reader: BodyReader,
  peerHost: string,
  trace: string | null,
): Promise<"sent" | "bodyFailed"> {
  const inserter = new PeerInserter(peerHost);
  const stuffer = new DotStuffer();
  const encode = (parts: readonly Uint8Array[]) => parts.flatMap((part) => stuffer.push(part));
  // This hop's trace line goes first (RFC 5321 §4.4), before the client's first byte.
  if (trace !== null) await client.writeBody(encode([new TextEncoder().encode(trace)]));
  for (;;) {
    let chunk: Awaited<ReturnType<BodyReader["read"]>>;
    try {
      chunk = await reader.read();
    } catch {
      return "bodyFailed";
    }
    if (chunk.done) break;
    await client.writeBody(encode(inserter.push(chunk.value)));
  }
  await client.writeBody([...encode(inserter.end()), stuffer.end()]);
  return "sent";
}

/**
 * An upstream reply as our reply: the same code, enhanced code and text; `421` becomes `451` (the
 * upstream closing is not this server closing); anything but a 2xx/4xx/5xx (a 354 to MAIL) is a
 * protocol error, `451 4.5.0`.
 */
export function upstreamAnswer(reply: Reply): Reply {
  if (reply.code === 421) return makeReply(451, reply.lines, reply.enhanced);
  const cls = Math.floor(reply.code / 100);
  if (cls === 2 || cls === 4 || cls === 5) return reply;
  return makeReply(451, `Upstream protocol error: unexpected ${reply.code} reply`, "4.5.0");
}

/** The upstream could not be reached (or set up): `451 4.4.1`. */
function unavailable(error: unknown): Reply {
  const e = error as UpstreamError;
  if (e?.code === "EAUTH") {
    return makeReply(451, "Error: the upstream refused this relay's credentials", "4.7.0");
  }
  if (e?.code === "ETLS")
    return makeReply(451, `Error: upstream TLS failed: ${e.message}`, "4.7.0");
  return makeReply(451, `Error: cannot relay the message, upstream unavailable${why(e)}`, "4.4.1");
}

/** The upstream connection broke during a transaction: `451 4.4.2`. */
function lost(error: unknown): Reply {
  const e = error as UpstreamError | null;
  if (e?.code === "EPROTOCOL") return makeReply(451, e.message, "4.5.0");
  return makeReply(451, `Error: upstream connection lost${why(e)}`, "4.4.2");
}

function why(error: UpstreamError | null | undefined): string {
  const code = error?.code;
  return code && /^E[A-Z]+$/.test(code) ? ` (${code})` : "";
}

function parseParams(options: readonly string[]): Param[] {
  return options.map((text) => {
    const eq = text.indexOf("=");
    return { keyword: (eq === -1 ? text : text.slice(0, eq)).toUpperCase(), text };
  });
}

/**
 * The MAIL parameters the upstream offers (BODY needs 8BITMIME, RET/ENVID need DSN, others their
 * own keyword); the rest are dropped. SMTPUTF8 and REQUIRETLS cannot be dropped: the transaction
 * is refused when the upstream lacks them (REQUIRETLS also needs TLS with a verified certificate,
 * RFC 8689 §4.2.1).
 */
function mailParams(
  client: UpstreamClient,
  params: readonly Param[],
): { text: string } | { refusal: Reply } {
  let text = "";
  for (const param of params) {
    const { keyword } = param;
    if (keyword === "SMTPUTF8" && !client.offers("SMTPUTF8")) {
      return { refusal: makeReply(553, "Error: the upstream does not support SMTPUTF8", "5.6.7") };
    }
    if (keyword === "REQUIRETLS" && !(client.authorized && client.offers("REQUIRETLS"))) {
      const why = client.authorized
        ? "does not offer REQUIRETLS"
        : "is not reached over verified TLS";
      return {
        refusal: makeReply(550, `REQUIRETLS support required: the upstream ${why}`, "5.7.30"),
      };
    }
    if (keyword === "BODY" && param.text.toUpperCase() === "BODY=BINARYMIME") {
      return { refusal: makeReply(555, "Error: BODY=BINARYMIME is not relayed", "5.5.4") };
    }
    if (offered(client, keyword, MAIL_EXTENSIONS)) text += ` ${param.text}`;
  }
  return { text };
}

function rcptParams(client: UpstreamClient, params: readonly Param[]): string {
  let text = "";
  for (const param of params) {
    if (offered(client, param.keyword, RCPT_EXTENSIONS)) text += ` ${param.text}`;
  }
  return text;
}

/** Which EHLO keyword a parameter needs; `null`: never passed on (AUTH= names our client's identity). */
const MAIL_EXTENSIONS: Readonly<Record<string, string | null>> = {
  BODY: "8BITMIME",
  RET: "DSN",
  ENVID: "DSN",
  AUTH: null,
};
const RCPT_EXTENSIONS: Readonly<Record<string, string | null>> = { NOTIFY: "DSN", ORCPT: "DSN" };

function offered(
  client: UpstreamClient,
  keyword: string,
  table: Readonly<Record<string, string | null>>,
): boolean {
  const extension = keyword in table ? table[keyword] : keyword;
  return extension !== null && extension !== undefined && client.offers(extension);
}
