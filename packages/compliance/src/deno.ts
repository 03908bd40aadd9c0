// Deno glue: the client side on Deno.connect / Deno.startTls, child processes on Deno.Command,
// and registration with Deno.test.
import type { ClientSocket, ComplianceCase, ComplianceRuntime } from "./types.js";

const decoder = new TextDecoder();

function wrap(conn: Deno.Conn): ClientSocket {
  const buffer = new Uint8Array(64 * 1024);
  let closed = false;
  return {
    async write(data) {
      for (let offset = 0; offset < data.length; )
        offset += await conn.write(data.subarray(offset));
    },
    async read() {
      if (closed) return null;
      try {
        const n = await conn.read(buffer);
        return n === null ? null : buffer.slice(0, n);
      } catch {
        return null; // reset, or closed by close()
      }
    },
    async startTls({ servername, ca }) {
      return wrap(await Deno.startTls(conn, { hostname: servername, caCerts: [ca] }));
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // already closed
      }
    },
  };
}

export const denoRuntime: ComplianceRuntime = {
  name: "deno",
  connect: async (host, port) => wrap(await Deno.connect({ hostname: host, port })),
  async exec(command, args) {
    const output = await new Deno.Command(command, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  },
};

/**
 * Registers the cases with `Deno.test`. The op and resource sanitizers are off: a case's
 * servers and sockets are closed by the case, but the adapter's linger timers may still run.
 */
export function registerDenoTests(cases: readonly ComplianceCase[]): void {
  for (const c of cases) {
    Deno.test({
      name: c.skip === undefined ? c.name : `${c.name} [skip: ${c.skip}]`,
      ignore: c.skip !== undefined,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: () => c.run(),
    });
  }
}
