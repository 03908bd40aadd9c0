import type { ServerConnection } from "../engine/connection.js";
import { catalogueReply, REPLIES } from "../engine/replies.js";
import type { Reply } from "../reply.js";
import type { ProxyData } from "../syntax/proxy-protocol.js";
import type { CloseReason, ConnectDecision, Handler } from "./handler.js";
import { callHook, failure, replyOf } from "./hooks.js";
import type { Session } from "./session.js";
import { newSessionId } from "./session-id.js";
import type { ServerContext } from "./smtp-options.js";
import { refusedAsUntrusted, type ServerTables } from "./tables.js";
import type { PeerAddress, SmtpTransport } from "./transport.js";

const EARLY_TALKER = catalogueReply(REPLIES.earlyTalker, true);
const UNTRUSTED_PEER = catalogueReply(REPLIES.untrustedPeer, true);

/** What the greeting decision needs of the session being opened. */
export interface GreetingContext {
  readonly server: ServerContext & { readonly handler: Handler; readonly session: Session };
  readonly connection: ServerConnection;
  readonly transport: SmtpTransport;
  readonly tables: ServerTables;
  readonly isClosed: () => boolean;
  readonly log: (message: string) => void;
  readonly logError: (message: string) => void;
}

/** How the greeting went: a read started during a pause (the loop takes it over), a refusal. */
export interface Greeting {
  readonly pendingRead: Promise<Uint8Array | null> | null;
  readonly refused: boolean;
}

/**
 * `handleCONNECT` decides on the greeting: now, after a pause (a client that talks first is an
 * early talker), or a refusal. Answers the engine's `connect` event.
 */
export async function decideGreeting(ctx: GreetingContext): Promise<Greeting> {
  const { server, connection } = ctx;
  if (refusedAsUntrusted(ctx.tables, server.options, ctx.transport)) {
    ctx.log("refused: not a trusted proxy");
    connection.reply(UNTRUSTED_PEER);
    return { pendingRead: null, refused: true };
  }
  const handler = server.handler;
  const outcome = await callHook(
    () => handler.handleCONNECT?.(server, server.session, server.signal),
    handler,
    ctx.logError,
  );
  if (ctx.isClosed()) return { pendingRead: null, refused: false };
  let value = outcome.error ?? outcome.value;
  let pendingRead: Promise<Uint8Array | null> | null = null;
  if (isConnectDecision(value)) {
    const pause = greetPause(ctx.transport, value.delay);
    pendingRead = pause.read;
    const talked = await pause.talked;
    if (ctx.isClosed()) return { pendingRead, refused: false };
    if (talked && server.options.earlyTalkers !== "allow") {
      ctx.log("early talker refused");
      connection.reply(EARLY_TALKER);
      return { pendingRead, refused: true };
    }
    value = value.reply;
  }
  let reply: Reply | null;
  try {
    reply = replyOf(value);
  } catch (error) {
    reply = await failure(error, handler, ctx.logError);
  }
  if (reply === null || (reply.code >= 200 && reply.code < 300 && reply.code !== 220)) {
    connection.accept();
    return { pendingRead, refused: false };
  }
  connection.reply(reply);
  return { pendingRead, refused: reply.code >= 400 };
}

/** Calls `handleCLOSE` once; whatever it does, the session's end does not fail. */
export async function closeHook(
  server: ServerContext & { readonly handler: Handler; readonly session: Session },
  reason: CloseReason,
  logError: (message: string) => void,
): Promise<void> {
  const hook = server.handler.handleCLOSE;
  if (!hook) return;
  try {
    await hook.call(server.handler, server, server.session, reason);
  } catch (error) {
    logError(`handleCLOSE failed: ${String((error as Error)?.stack ?? error)}`);
  }
}

/** What a session knows of its connection from the start (kept across STARTTLS). */
export function identify(session: Session, transport: SmtpTransport, lmtp: boolean): void {
  session.id = newSessionId();
  session.transportPeer = transport.peer;
  session.localAddress = transport.local?.address ?? null;
  session.localPort = transport.local?.port ?? null;
  if (lmtp) session.protocol = "LMTP";
}

/** The client a PROXY header names, when it names one (not for LOCAL or UNSPEC). */
export function proxiedPeer(proxy: ProxyData): PeerAddress | null {
  if (proxy.command !== "PROXY" || proxy.srcAddress === null) return null;
  if (proxy.family === "INET" || proxy.family === "INET6") {
    return {
      address: proxy.srcAddress,
      port: proxy.srcPort ?? 0,
      family: proxy.family === "INET" ? "IPv4" : "IPv6",
    };
  }
  return proxy.family === "UNIX" ? { address: proxy.srcAddress, port: 0, family: "unix" } : null;
}

/** `handleCONNECT`'s `{ delay }` form. */
export function isConnectDecision(value: unknown): value is ConnectDecision {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { delay?: unknown }).delay === "number"
  );
}

/**
 * Waits `ms` before the greeting while watching the client: `talked` is true when it sent
 * something first (an early talker). `read` is the read started for that, which the caller's loop
 * takes over so nothing the client sent is lost.
 */
export function greetPause(
  transport: SmtpTransport,
  ms: number,
): { talked: Promise<boolean>; read: Promise<Uint8Array | null> } {
  const read = transport.read();
  read.catch(() => undefined); // a reset is seen where the loop awaits the same promise
  const talked = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, ms));
    read.then(
      (data) => {
        clearTimeout(timer);
        resolve(data !== null && data.length > 0);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
  return { talked, read };
}
