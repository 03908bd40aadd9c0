/**
 * Who the client is when something stands in between: a PROXY header from a trusted proxy, then
 * XCLIENT and XFORWARD from a trusted relay (Postfix's semantics). The engine checks syntax,
 * sequencing and trust; this applies accepted ones to the session and envelope, and keeps the
 * engine's idea of trust in step with the client the session now believes it talks to.
 */
import type { ServerConnection } from "../engine/connection.js";
import type { XclientEvent, XforwardEvent } from "../events.js";
import type { CidrMatcher } from "../syntax/cidr.js";
import type { ProxyData } from "../syntax/proxy-protocol.js";
import { proxiedPeer } from "./connect.js";
import type { Handler } from "./handler.js";
import { callHook } from "./hooks.js";
import { carryConnection, type Envelope, type ForwardedClient, type Session } from "./session.js";
import type { ServerContext } from "./smtp-options.js";
import type { PeerAddress } from "./transport.js";

/** The addresses trusted with each relay command (`null`: the command is off). */
export interface RelayTrust {
  readonly xclient: CidrMatcher | null;
  readonly xforward: CidrMatcher | null;
}

export interface RelayContext {
  readonly server: ServerContext & {
    readonly handler: Handler;
    session: Session;
    envelope: Envelope;
  };
  readonly connection: ServerConnection;
  readonly trust: RelayTrust;
  readonly newSession: () => Session;
  readonly newEnvelope: () => Envelope;
  readonly logError: (message: string) => void;
}

/** Answers the engine's `proxyHeader`, `xclient` or `xforward` event. */
export function relayEvent(
  ctx: RelayContext,
  event: { type: "proxyHeader"; proxy: ProxyData } | XclientEvent | XforwardEvent,
): Promise<void> | undefined {
  if (event.type === "proxyHeader") return acceptProxyHeader(ctx, event.proxy);
  if (event.type === "xclient") restartSession(ctx, event);
  else recordForward(ctx, event);
  return;
}

/** Whether `peer` is trusted with each relay command. */
export function relayTrustOf(
  trust: RelayTrust,
  peer: PeerAddress | null,
): { xclient: boolean; xforward: boolean } {
  const matches = (list: CidrMatcher | null) =>
    list !== null && peer !== null && list.matches(peer.address);
  return { xclient: matches(trust.xclient), xforward: matches(trust.xforward) };
}

async function acceptProxyHeader(ctx: RelayContext, proxy: ProxyData): Promise<void> {
  const { server, connection } = ctx;
  server.session.proxyData = proxy;
  const handler = server.handler;
  const { error, value } = await callHook(
    () => handler.handlePROXY?.(server, server.session, server.envelope, proxy, server.signal),
    handler,
    ctx.logError,
  );
  // No hook: go on. A hook says true to go on; false, or a failure, closes.
  if (error === null && (!handler.handlePROXY || value)) {
    // The header comes from a trusted proxy: the client it names is the session's peer, and
    // what that client may do is decided by its address.
    const peer = proxiedPeer(proxy);
    if (peer) server.session.peer = peer;
    connection.trustRelay(relayTrustOf(ctx.trust, server.session.peer));
    connection.accept();
  } else connection.rejectProxy();
}

/**
 * XCLIENT accepted: a new session, as if the named client had just connected (TLS stays, HELO/EHLO
 * is needed again), then the greeting. As in Postfix, XCLIENT trust is decided again for the new
 * address (once ADDR names an outside client, that client may not use XCLIENT).
 */
function restartSession(ctx: RelayContext, event: XclientEvent): void {
  const { server, connection } = ctx;
  const previous = server.session;
  const session = ctx.newSession();
  carryConnection(previous, session);
  session.ssl = previous.ssl;
  session.peer = overriddenPeer(previous.peer, event);
  if (event.destAddress !== undefined) session.localAddress = event.destAddress?.address ?? null;
  if (event.destPort !== undefined) session.localPort = event.destPort;
  if (event.helo !== undefined) session.hostName = event.helo;
  // PROXY=ESMTP: the transmission type is ESMTP's until the next HELO/EHLO says otherwise.
  if (event.proto !== undefined) session.extendedSmtp = event.proto === "ESMTP";
  if (typeof event.login === "string") {
    session.login = event.login;
    session.authenticated = true;
  }
  session.xclient = { ...(previous.xclient ?? {}), ...event.attributes };
  server.session = session;
  server.envelope = ctx.newEnvelope();
  connection.trustRelay({ xclient: relayTrustOf(ctx.trust, session.peer).xclient });
  connection.accept();
}

/** The client after XCLIENT: ADDR and PORT replace the address and port; `[UNAVAILABLE]` ADDR: none. */
function overriddenPeer(peer: PeerAddress | null, event: XclientEvent): PeerAddress | null {
  if (event.address === null) return null;
  const port = event.port === undefined ? (peer?.port ?? 0) : (event.port ?? 0);
  if (event.address !== undefined) return { ...event.address, port };
  if (peer === null || event.port === undefined) return peer;
  return { ...peer, port };
}

/**
 * XFORWARD accepted: the first one of a transaction starts from "unavailable" for every attribute
 * (Postfix), later ones update what they name. The envelope, renewed after each transaction,
 * RSET and HELO/EHLO, forgets them.
 */
function recordForward(ctx: RelayContext, event: XforwardEvent): void {
  const envelope = ctx.server.envelope;
  const was = envelope.xforward;
  const pick = <T>(sent: T | undefined, old: T | null | undefined): T | null =>
    sent === undefined ? (old ?? null) : sent;
  const forwarded: ForwardedClient = {
    address: pick(event.address, was?.address),
    port: pick(event.port, was?.port),
    name: pick(event.name, was?.name),
    helo: pick(event.helo, was?.helo),
    proto: pick(event.proto, was?.proto),
    ident: pick(event.ident, was?.ident),
    source: pick(event.source, was?.source),
    attributes: { ...(was?.attributes ?? {}), ...event.attributes },
  };
  envelope.xforward = forwarded;
  ctx.connection.accept();
}

/**
 * The client a message came from, for trace fields such as `X-Peer`: XFORWARD's up-stream client
 * when the relay sent one (its address, or none when unavailable), else the session's peer.
 */
export function messagePeer(
  session: Pick<Session, "peer">,
  envelope: { readonly xforward?: ForwardedClient | null } | null | undefined,
): PeerAddress | null {
  const forwarded = envelope?.xforward;
  if (!forwarded) return session.peer;
  if (forwarded.address === null) return null;
  return { ...forwarded.address, port: forwarded.port ?? 0 };
}
