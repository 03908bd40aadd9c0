// The Deno globals @smtpkit/deno uses, declared so `tsc` can check the package under Node.
// Deno itself never reads this file (nothing imports it; it is only in tsconfig's `include`) and
// checks src/ against its own, complete declarations.

declare namespace Deno {
  type Addr =
    | { transport: "tcp" | "udp"; hostname: string; port: number }
    | { transport: "unix" | "unixpacket"; path: string }
    | { transport: "vsock"; cid: number; port: number };
  interface Conn {
    readonly localAddr: Addr;
    readonly remoteAddr: Addr;
    read(buffer: Uint8Array): Promise<number | null>;
    write(data: Uint8Array): Promise<number>;
    closeWrite(): Promise<void>;
    close(): void;
  }
  interface TlsConn extends Conn {
    handshake(): Promise<{ alpnProtocol: string | null }>;
  }
  interface Listener<C extends Conn = Conn> extends AsyncIterable<C> {
    readonly addr: Addr;
    accept(): Promise<C>;
    close(): void;
  }
  function listen(options: { hostname: string; port: number; transport?: "tcp" }): Listener;
  function listen(options: { path: string; transport: "unix" }): Listener;
  function listenTls(options: {
    hostname: string;
    port: number;
    key: string;
    cert: string;
    alpnProtocols?: string[];
  }): Listener<TlsConn>;
  function connect(options: { hostname: string; port: number }): Promise<Conn>;
  function hostname(): string;
  const permissions: {
    querySync(descriptor: { name: "sys"; kind: "hostname" }): { state: string };
  };
  namespace errors {
    class BadResource extends Error {}
  }
  function test(definition: {
    name: string;
    sanitizeOps?: boolean;
    sanitizeResources?: boolean;
    fn: () => Promise<void> | void;
  }): void;
}
