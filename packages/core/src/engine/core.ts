/**
 * The engine's insides behind the `Dialog` interface: the dialog state, the one `transition()`
 * that changes the phase (and aborts an open body when the transaction ends), the event queue
 * and the output. `ServerConnection` (connection.ts) is the public face over it.
 */
import { LocalProtocolError } from "../errors.js";
import type { ClosedEvent, SmtpEvent } from "../events.js";
import type { ResolvedOptions } from "../options.js";
import type { EnhancedContext, Reply } from "../reply.js";
import { ByteQueue } from "../syntax/byte-queue.js";
import type { Dialog, Pending } from "./dialog.js";
import { rejection } from "./dialog.js";
import { LineReader } from "./line-reader.js";
import {
  type CatalogueReply,
  catalogueBytes,
  catalogueReply,
  encodeReply,
  REPLIES,
  TEMPLATES,
} from "./replies.js";
import { type DialogState, initialState, TRANSITIONS, type Trigger } from "./states.js";

const EMPTY = new Uint8Array(0);

export class Core implements Dialog {
  readonly input = new ByteQueue();
  readonly state: DialogState;
  readonly lines: LineReader;
  mechanisms: readonly string[];
  pending: Pending | null = null;
  /** Code of the last reply pushed while an event was pending (a hook that answered by itself). */
  pushedCode: number | null = null;
  closedEvent: ClosedEvent | null = null;
  /** Whether any output has been handed to the caller yet. */
  outputTaken = false;
  private readonly queued: SmtpEvent[] = [];
  private queuedHead = 0;
  private readonly out: Uint8Array[] = [];
  private outLength = 0;
  private unknownCommands = 0;
  private readonly enhancedOn: boolean;

  constructor(readonly options: ResolvedOptions) {
    this.state = initialState(options.implicitTls, options.proxyProtocol);
    this.state.xclientTrusted = options.xclientTrusted;
    this.state.xforwardTrusted = options.xforwardTrusted;
    this.lines = new LineReader(this.input, options);
    this.mechanisms = options.authMechanisms;
    this.enhancedOn = options.enhancedStatusCodes;
  }

  transition(trigger: Trigger): void {
    const t = TRANSITIONS[trigger];
    const s = this.state;
    if (t.from !== "*" && !t.from.includes(s.phase)) {
      throw new Error(`smtpkit engine bug: transition ${trigger} in phase ${s.phase}`);
    }
    if (t.body === "end") s.body = null;
    if (t.transaction || t.session) {
      // TRANSITIONS rule 2: a body still open when its transaction ends is aborted, here only.
      if (s.body !== null) {
        const body = s.body;
        s.body = null;
        this.emit({
          type: "bodyEnd",
          error: "aborted",
          size: body.reader ? body.reader.size : body.size,
          recipients: [...s.recipients],
        });
      }
      s.mailFrom = null;
      s.binaryMime = false;
      if (s.recipients.length > 0) s.recipients = [];
      s.chunk = null;
    }
    if (t.session) {
      s.helloVerb = null;
      s.authenticated = false;
    }
    if (t.discardInput) {
      this.input.clear();
      this.lines.reset();
    }
    s.phase = t.to;
  }

  emit(event: SmtpEvent): void {
    this.queued.push(event);
  }

  /** The next queued event, or `undefined`. */
  dequeue(): SmtpEvent | undefined {
    if (this.queuedHead === this.queued.length) return undefined;
    const event = this.queued[this.queuedHead++];
    if (this.queuedHead === this.queued.length) {
      this.queued.length = 0;
      this.queuedHead = 0;
    }
    return event;
  }

  await(pending: Pending, event: SmtpEvent, trigger: Trigger = "await"): void {
    this.transition(trigger);
    this.pending = pending;
    this.pushedCode = null;
    this.emit(event);
  }

  write(reply: CatalogueReply | Reply, context: EnhancedContext | "hello" = "other"): void {
    const bytes =
      "lines" in reply
        ? encodeReply(reply, context, this.enhancedOn)
        : catalogueBytes(reply, this.enhancedOn);
    this.writeBytes(bytes);
  }

  writeBytes(bytes: Uint8Array): void {
    this.out.push(bytes);
    this.outLength += bytes.length;
  }

  /** Everything written since the last call, as one array. */
  takeOutput(): Uint8Array {
    if (this.outLength === 0) return EMPTY;
    this.outputTaken = true;
    if (this.out.length === 1) {
      // One reply (a client that does not pipeline): its bytes as they are, often the
      // catalogue's shared pre-formatted ones, which nobody writes to.
      const only = this.out[0] as Uint8Array;
      this.out.length = 0;
      this.outLength = 0;
      return only;
    }
    const out = new Uint8Array(this.outLength);
    let at = 0;
    for (const bytes of this.out) {
      out.set(bytes, at);
      at += bytes.length;
    }
    this.out.length = 0;
    this.outLength = 0;
    return out;
  }

  /** Drops output not yet taken (a refusal replaces the greeting). */
  dropOutput(): void {
    this.out.length = 0;
    this.outLength = 0;
  }

  reject(verb: string, entry: CatalogueReply | Reply): void {
    this.write(entry);
    this.emit(rejection(verb, "lines" in entry ? entry : this.catalogue(entry)));
  }

  catalogue(entry: CatalogueReply): Reply {
    return catalogueReply(entry, this.enhancedOn);
  }

  unknown(verb: string): void {
    this.unknownCommands++;
    if (this.unknownCommands >= this.options.maxUnknownCommands) {
      this.reject(verb, REPLIES.tooManyUnknown);
      return this.finish("tooManyUnknownCommands");
    }
    this.reject(verb, TEMPLATES.notRecognized(verb));
  }

  greeting(): void {
    this.write(TEMPLATES.greeting(this.options.hostname, this.options.ident), "hello");
  }

  finish(reason: ClosedEvent["reason"]): void {
    if (this.closedEvent) return;
    this.pending = null;
    this.transition("close");
    this.emit(this.close(reason));
  }

  close(reason: ClosedEvent["reason"]): ClosedEvent {
    this.closedEvent ??= { type: "closed", reason };
    return this.closedEvent;
  }

  /** The pending event, taken: checked before anything changes. */
  takePending(method: string, kind?: Pending["kind"]): Pending {
    const pending = this.peekPending(method, kind);
    this.pending = null;
    return pending;
  }

  peekPending(method: string, kind?: Pending["kind"]): Pending {
    const pending = this.pending;
    if (!pending || this.state.phase !== "reply") {
      throw new LocalProtocolError(`${method} with no event awaiting a reply`);
    }
    if (kind && pending.kind !== kind) {
      throw new LocalProtocolError(`${method} does not answer a ${pending.kind} event`);
    }
    return pending;
  }
}
