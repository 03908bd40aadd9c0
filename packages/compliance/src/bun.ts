// Bun glue: the client side on Bun.connect (socket.upgradeTLS for STARTTLS), child processes on
// Bun.spawn. Register the cases with `registerCases(cases, test)` and bun:test's `test`.
import type { ClientSocket, ComplianceRuntime } from "./types.js";

interface State {
  readonly queue: Uint8Array[];
  ended: boolean;
  wake: (() => void) | null;
  drained: (() => void) | null;
  handshake: ((error: Error | null) => void) | null;
}

function notify(state: State): void {
  const wake = state.wake;
  state.wake = null;
  wake?.();
}

function end(state: State): void {
  state.ended = true;
  notify(state);
  state.drained?.();
  state.handshake?.(new Error("the connection closed during the TLS handshake"));
}

const handlers: Bun.SocketHandler<State> = {
  data(socket, chunk) {
    socket.data.queue.push(new Uint8Array(chunk));
    notify(socket.data);
  },
  drain(socket) {
    const drained = socket.data.drained;
    socket.data.drained = null;
    drained?.();
  },
  handshake(socket, success, authorizationError) {
    const done = socket.data.handshake;
    socket.data.handshake = null;
    done?.(success && !authorizationError ? null : new Error(String(authorizationError)));
  },
  end: (socket) => end(socket.data),
  close: (socket) => end(socket.data),
  error: (socket) => end(socket.data),
};

function newState(): State {
  return { queue: [], ended: false, wake: null, drained: null, handshake: null };
}

function wrap(socket: Bun.Socket<State>): ClientSocket {
  const state = socket.data;
  return {
    async write(data) {
      let rest = data;
      while (rest.length > 0) {
        if (state.ended) throw new Error("the connection is closed");
        const written = socket.write(rest);
        if (written < 0) throw new Error("the connection is closed");
        rest = rest.subarray(written);
        if (rest.length > 0) {
          await new Promise<void>((resolve) => {
            state.drained = resolve;
          });
        }
      }
    },
    async read() {
      for (;;) {
        const chunk = state.queue.shift();
        if (chunk) return chunk;
        if (state.ended) return null;
        await new Promise<void>((resolve) => {
          state.wake = resolve;
        });
      }
    },
    startTls({ servername, ca }) {
      const next = newState();
      return new Promise((resolve, reject) => {
        next.handshake = (error) => (error ? reject(error) : resolve(wrap(secure)));
        const [, secure] = socket.upgradeTLS<State>({
          data: next,
          tls: { ca, serverName: servername, rejectUnauthorized: true },
          socket: handlers,
        });
      });
    },
    close: () => socket.terminate(),
  };
}

export const bunRuntime: ComplianceRuntime = {
  name: "bun",
  connect: async (host, port) =>
    wrap(await Bun.connect<State>({ hostname: host, port, data: newState(), socket: handlers })),
  async exec(command, args) {
    const child = Bun.spawn([command, ...args], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { code, stdout, stderr };
  },
};
