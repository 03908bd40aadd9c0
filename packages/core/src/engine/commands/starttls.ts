/**
 * STARTTLS (RFC 3207). COMMAND_RULES: no argument, offered (454), not under TLS yet (503).
 *
 * How buffered bytes are discarded (RFC 3207 §6, aiosmtpd CVE-2024-34083): everything the client
 * sent after the STARTTLS line, a partial line included, was buffered in plaintext and must never
 * be parsed. The "startTls" transition discards the input buffer (and resets the transaction,
 * aborting an open body); in the "paused" phase `receiveData()` drops whatever arrives before the
 * handshake; `tlsEstablished()` ("tlsEstablished" transition) discards the buffer again and starts
 * a fresh session. A transport only has to hand over bytes read after the handshake.
 */

import { REPLIES } from "../replies.js";
import type { Command } from "./command.js";

const START_TLS_EVENT = Object.freeze({ type: "startTls" as const });

export const startTls: Command = {
  run(d) {
    d.write(REPLIES.readyTls);
    d.transition("startTls");
    d.emit(START_TLS_EVENT);
  },
};
