// Node glue: the client side on node:net / node:tls and child processes on node:child_process.
import { execFile } from "node:child_process";
import * as net from "node:net";
import * as tls from "node:tls";
import type { ClientSocket, ComplianceRuntime, ExecResult } from "./types.js";

/** A pull-based reader over a Node socket (paused mode). */
function wrap(socket: net.Socket): ClientSocket {
  let ended = false;
  let wake: (() => void) | null = null;
  const onChange = (): void => {
    const resume = wake;
    wake = null;
    resume?.();
  };
  const onEnd = (): void => {
    ended = true;
    onChange();
  };
  socket.on("readable", onChange);
  socket.on("end", onEnd);
  socket.on("close", onEnd);
  socket.on("error", onEnd);
  const detach = (): void => {
    socket.off("readable", onChange);
    socket.off("end", onEnd);
    socket.off("close", onEnd);
  };
  return {
    write: (data) =>
      new Promise((resolve, reject) =>
        socket.write(data, (error) => (error ? reject(error) : resolve())),
      ),
    async read() {
      for (;;) {
        const chunk = socket.read() as Uint8Array | null;
        if (chunk !== null) return chunk;
        if (ended) return null;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
    startTls({ servername, ca }) {
      detach();
      return new Promise((resolve, reject) => {
        const secure = tls.connect({ socket, servername, ca });
        secure.once("error", reject);
        secure.once("secureConnect", () => {
          secure.off("error", reject);
          resolve(wrap(secure));
        });
      });
    },
    close: () => socket.destroy(),
  };
}

export const nodeRuntime: ComplianceRuntime = {
  name: "node",
  connect: (host, port) =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(wrap(socket));
      });
    }),
  exec: (command, args) =>
    new Promise<ExecResult>((resolve) => {
      const child = execFile(
        command,
        [...args],
        { maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
          resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        },
      );
      child.stdin?.end(); // no input, as on Deno and Bun (openssl s_client reads until EOF)
    }),
};
