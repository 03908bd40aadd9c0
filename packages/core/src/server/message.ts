import { catalogueReply, REPLIES } from "../engine/replies.js";
import { SmtpError } from "../errors.js";
import type { BodyEndEvent } from "../events.js";
import type { Reply } from "../reply.js";
import { MessageBody } from "./body.js";
import type { Handler } from "./handler.js";
import { callHook, type ErrorLog, NO_HOOK, type Outcome } from "./hooks.js";
import type { ServerContext, SmtpOptions } from "./smtp-options.js";

/**
 * One message body on its way to the handler. There is one path: `handleDATAStream` reads the
 * body as it arrives; `handleDATA` is a reader of the same body that collects it into
 * `envelope.content` and then runs. With neither hook the chunks are dropped unread.
 */
export class MessageReception {
  readonly #body: MessageBody | null;
  readonly #hook: Promise<Outcome> | null;
  /** `decodeData` without SMTPUTF8 (aiosmtpd's strict ASCII mode): refuse bytes above 127. */
  readonly #asciiOnly: boolean;
  #nonAscii = false;
  readonly #options: SmtpOptions;

  constructor(server: ServerContext, handler: Handler, logError: ErrorLog) {
    const o = server.options;
    this.#options = o;
    this.#asciiOnly = o.decodeData === true && o.enableSmtpUtf8 !== true;
    const read = handler.handleDATAStream
      ? (body: MessageBody) =>
          handler.handleDATAStream?.(server, server.session, server.envelope, body, server.signal)
      : handler.handleDATA
        ? (body: MessageBody) => collect(server, handler, body)
        : null;
    if (read === null) {
      this.#body = null;
      this.#hook = null;
      return;
    }
    const body = new MessageBody();
    this.#body = body;
    this.#hook = Promise.resolve(callHook(() => read(body), handler, logError)).then((outcome) => {
      // A hook that returned early will not read the rest: stop feeding it.
      body.abandon();
      return outcome;
    });
  }

  /** Body bytes: a promise while the reader is behind (the backpressure towards the client). */
  write(data: Uint8Array): Promise<void> | undefined {
    if (this.#asciiOnly && !this.#nonAscii) this.#nonAscii = hasNonAscii(data);
    return this.#body?.write(data);
  }

  /** The body is complete: the hook's outcome (a strict-ASCII refusal wins over it). */
  async complete(): Promise<Outcome> {
    if (this.#nonAscii) {
      // aiosmtpd refuses a non-ASCII body in strict ASCII mode, hook or not.
      await this.fail(new SmtpError(500, "5.6.7", REPLIES.strictAsciiBody.text));
      return { value: undefined, error: this.#strictAsciiReply };
    }
    if (!this.#body || !this.#hook) return NO_HOOK;
    this.#body.end();
    return this.#hook;
  }

  /** The body will not complete: the reader's next read rejects; settles once the hook is done. */
  async fail(error: unknown): Promise<void> {
    this.#body?.fail(error);
    if (this.#hook) await this.#hook;
  }

  /** The same without waiting (the connection is gone). */
  abandon(error: unknown): void {
    this.#body?.fail(error);
  }

  get #strictAsciiReply(): Reply {
    const o = this.#options;
    return catalogueReply(
      REPLIES.strictAsciiBody,
      o.lmtp || (o.extensions?.enhancedStatusCodes ?? true),
    );
  }
}

/** What a body's reader sees when the body does not complete. */
export function bodyError(error: NonNullable<BodyEndEvent["error"]>): SmtpError {
  if (error === "aborted") return new SmtpError(451, "4.3.0", "Transaction aborted");
  return new SmtpError(552, "5.3.4", `Message refused: ${error}`);
}

/** `handleDATA` as a reader of the body: collects it, then runs with `envelope.content` set. */
async function collect(
  server: ServerContext,
  handler: Handler,
  body: MessageBody,
): Promise<unknown> {
  const content = await body.bytes();
  const envelope = server.envelope;
  envelope.originalContent = content;
  envelope.content = server.options.decodeData ? new TextDecoder("utf-8").decode(content) : content;
  return handler.handleDATA?.(server, server.session, envelope, server.signal);
}

function hasNonAscii(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if ((data[i] as number) > 127) return true;
  return false;
}
