import type { ProxyData } from "../syntax/proxy-protocol.js";
import type { ConnectDecision } from "./handler.js";
import type { Session } from "./session.js";
import { newSessionId } from "./session-id.js";
import type { PeerAddress, SmtpTransport } from "./transport.js";

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
