/**
 * What a command sees of the engine: the dialog state, the options, and a handful of actions.
 * Commands import this interface, never the connection, so there is no import circle.
 */
import { RemoteProtocolError } from "../errors.js";
import type { ClosedEvent, RejectedEvent, SmtpEvent } from "../events.js";
import type { ResolvedOptions } from "../options.js";
import type { EnhancedContext, Reply } from "../reply.js";
import type { ByteQueue } from "../syntax/byte-queue.js";
import type { CatalogueReply } from "./replies.js";
import type { DialogState, Trigger } from "./states.js";

/** The event that awaits the program's decision, and what the engine needs to finish it. */
export type Pending =
  | { readonly kind: "proxyHeader" }
  | { readonly kind: "connect" }
  | {
      readonly kind: "hello";
      readonly verb: "HELO" | "EHLO" | "LHLO";
      readonly defaultReply: Reply;
      readonly defaultBytes: Uint8Array;
    }
  | { readonly kind: "mail"; readonly address: string; readonly binaryMime: boolean }
  | { readonly kind: "rcpt"; readonly address: string }
  | { readonly kind: "bodyEnd" }
  | { readonly kind: "rset" | "noop" | "vrfy" | "quit" | "xforward" }
  /** `login`: LOGIN= named a user, so the fresh session starts authenticated. */
  | { readonly kind: "xclient"; readonly login: boolean }
  | { readonly kind: "auth" }
  | {
      readonly kind: "command";
      readonly verb: string;
      readonly argument: string | null;
      readonly builtin: boolean;
    };

/** Pending values without fields, shared (no allocation per command). */
export const PENDING = {
  proxyHeader: { kind: "proxyHeader" },
  connect: { kind: "connect" },
  bodyEnd: { kind: "bodyEnd" },
  rset: { kind: "rset" },
  noop: { kind: "noop" },
  vrfy: { kind: "vrfy" },
  quit: { kind: "quit" },
  auth: { kind: "auth" },
  xforward: { kind: "xforward" },
} as const satisfies Record<string, Pending>;

export interface Dialog {
  readonly options: ResolvedOptions;
  readonly state: DialogState;
  /** Received bytes not yet parsed. */
  readonly input: ByteQueue;
  /** AUTH mechanisms offered on this connection (upper case). */
  readonly mechanisms: readonly string[];
  /** Changes the phase through `TRANSITIONS` (with its resets). */
  transition(trigger: Trigger): void;
  /** Queues an information event. */
  emit(event: SmtpEvent): void;
  /** Leaves `event` awaiting a decision, after the transition `trigger` (default "await"). */
  await(pending: Pending, event: SmtpEvent, trigger?: Trigger): void;
  /** Queues a reply already on the wire form. */
  writeBytes(bytes: Uint8Array): void;
  /** Queues a reply. */
  write(reply: CatalogueReply | Reply, context?: EnhancedContext): void;
  /** Queues a reply and a `rejected` event for it. */
  reject(verb: string, reply: CatalogueReply | Reply): void;
  /** A catalogue entry as a `Reply` in this connection's enhanced-code mode. */
  catalogue(entry: CatalogueReply): Reply;
  /** Counts an unknown command and answers it (the one over the limit closes). */
  unknown(verb: string): void;
  /** Ends the session. */
  finish(reason: ClosedEvent["reason"]): void;
}

/** The `rejected` event for a reply the engine sent by itself. */
export function rejection(verb: string, reply: Reply): RejectedEvent {
  const text = `${verb || "line"}: ${reply.code} ${reply.lines.join(" ")}`;
  return { type: "rejected", verb, reply, error: new RemoteProtocolError(text, reply) };
}
