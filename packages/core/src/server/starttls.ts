import type { Handler } from "./handler.js";
import { callHook, type ErrorLog, type Outcome } from "./hooks.js";
import type { SmtpTransport, TlsInfo } from "./transport.js";

/** What the STARTTLS upgrade needs of the session it upgrades. */
export interface TlsUpgrade {
  readonly transport: SmtpTransport;
  readonly handler: Handler;
  readonly logError: ErrorLog;
  /** Starts the new session and envelope the handshake calls for (RFC 3207 §4.2). */
  readonly restart: (info: TlsInfo) => void;
  /** Calls `handleSTARTTLS` on the new session. */
  readonly hook: () => Outcome | Promise<Outcome>;
}

/**
 * Runs the TLS handshake, then asks `handleSTARTTLS` whether the secured session may go on.
 * Returns `null` when the handshake failed: aiosmtpd hands that to `handle_exception`, and the
 * connection is closed.
 */
export async function upgradeToTls(upgrade: TlsUpgrade): Promise<boolean | null> {
  const { transport, handler, logError } = upgrade;
  let info: TlsInfo;
  try {
    info = await transport.startTls();
  } catch (error) {
    await callHook(() => handler.handleException?.(error), handler, logError);
    return null;
  }
  upgrade.restart(info);
  if (!handler.handleSTARTTLS) return true;
  const outcome = await upgrade.hook();
  return outcome.error === null && outcome.value !== false;
}
