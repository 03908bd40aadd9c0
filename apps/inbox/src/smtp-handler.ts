import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  Envelope,
  Handler,
  HookResult,
  MessageBody,
  ServerContext,
  Session,
} from "@smtpkit/core/server";
import type { FaultAction, FaultStage, Faults } from "./faults.js";
import type { MessageStore } from "./store.js";

/** Open client sockets by `address:port`, so that a fault can drop one without a reply. */
export class Connections {
  readonly #sockets = new Map<string, Socket>();

  track(socket: Socket): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#sockets.set(key, socket);
    socket.once("close", () => {
      if (this.#sockets.get(key) === socket) this.#sockets.delete(key);
    });
  }

  drop(session: Session): boolean {
    const peer = session.transportPeer ?? session.peer;
    const socket = peer ? this.#sockets.get(`${peer.address}:${peer.port}`) : undefined;
    socket?.destroy();
    return socket !== undefined;
  }
}

const DROPPED = "421 4.4.2 Connection dropped by a fault rule";

/**
 * The SMTP side of the inbox: every message streamed into the store (250 once it is committed),
 * and the fault rules consulted at CONNECT, AUTH, MAIL, RCPT and DATA.
 */
export function inboxHandler(
  store: MessageStore,
  faults: Faults,
  connections: Connections,
): Handler {
  const act = async (
    action: FaultAction | undefined,
    server: ServerContext,
    session: Session,
  ): Promise<string | undefined> => {
    if (!action) return undefined;
    if (action.delay)
      await sleep(action.delay, undefined, { signal: server.signal }).catch(() => undefined);
    if (action.drop) {
      if (!connections.drop(session)) server.abort(DROPPED);
      return DROPPED;
    }
    return action.reply;
  };
  const fault = (stage: FaultStage, recipients: readonly string[]) =>
    faults.decide(stage, recipients);

  return {
    async handleCONNECT(server, session) {
      const reply = await act(fault("CONNECT", []), server, session);
      return reply ?? undefined;
    },
    async handleAUTHAttempt(server, session) {
      return act(fault("AUTH", []), server, session);
    },
    async handleMAIL(server, session) {
      return act(fault("MAIL", []), server, session);
    },
    async handleRCPT(server, session, _envelope, address) {
      return act(fault("RCPT", [address]), server, session);
    },
    async handleDATAStream(
      server: ServerContext,
      session: Session,
      envelope: Envelope,
      body: MessageBody,
    ): Promise<HookResult> {
      const action = fault("DATA", envelope.rcptTos);
      // A drop without delay cuts the body short; anything else acts once the body is in.
      if (action?.drop && !action.delay) return act(action, server, session);
      if (action?.reply !== undefined) {
        // The refusal comes where a real server's would: after the whole body, nothing kept.
        for await (const _chunk of body) {
          // discarded
        }
        return act(action, server, session);
      }
      // A delay (and a drop after it: the message is kept, its 250 never arrives).
      const stored = await storeBody(store, envelope, body);
      return (await act(action, server, session)) ?? stored;
    },
  };
}

async function storeBody(
  store: MessageStore,
  envelope: Envelope,
  body: MessageBody,
): Promise<string> {
  const receiving = store.receive({ mailFrom: envelope.mailFrom ?? "", rcptTos: envelope.rcptTos });
  try {
    for await (const chunk of body) receiving.append(chunk);
  } catch (error) {
    receiving.abort();
    throw error;
  }
  const row = await receiving.commit();
  return `250 2.0.0 Ok: queued as ${row.id}`;
}
