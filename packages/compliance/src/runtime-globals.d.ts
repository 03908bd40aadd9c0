// The few Deno and Bun globals the runtime glue uses, so `tsc` can check it under Node. Deno and
// Bun never see this file: it is only in tsconfig's `include`, and the emitted .d.ts files do
// not mention these types.

declare namespace Deno {
  interface Conn {
    read(buffer: Uint8Array): Promise<number | null>;
    write(data: Uint8Array): Promise<number>;
    close(): void;
  }
  function connect(options: { hostname: string; port: number }): Promise<Conn>;
  function startTls(conn: Conn, options: { hostname: string; caCerts: string[] }): Promise<Conn>;
  class Command {
    constructor(
      command: string,
      options: { args: string[]; stdin: "null"; stdout: "piped"; stderr: "piped" },
    );
    output(): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
  }
  function test(definition: {
    name: string;
    ignore?: boolean;
    sanitizeOps?: boolean;
    sanitizeResources?: boolean;
    fn: () => Promise<void>;
  }): void;
}

declare namespace Bun {
  interface Socket<Data> {
    data: Data;
    write(data: Uint8Array): number;
    terminate(): void;
    upgradeTLS<Next>(options: {
      data: Next;
      tls: { ca: string; serverName: string; rejectUnauthorized: boolean };
      socket: SocketHandler<Next>;
    }): [Socket<Data>, Socket<Next>];
  }
  interface SocketHandler<Data> {
    data?(socket: Socket<Data>, chunk: Uint8Array): void;
    drain?(socket: Socket<Data>): void;
    handshake?(socket: Socket<Data>, success: boolean, authorizationError: Error | null): void;
    end?(socket: Socket<Data>): void;
    close?(socket: Socket<Data>, error?: Error): void;
    error?(socket: Socket<Data>, error: Error): void;
  }
  function connect<Data>(options: {
    hostname: string;
    port: number;
    data: Data;
    socket: SocketHandler<Data>;
  }): Promise<Socket<Data>>;
  function spawn(
    command: string[],
    options: { stdin: "ignore"; stdout: "pipe"; stderr: "pipe" },
  ): {
    stdout: ReadableStream<Uint8Array>;
    stderr: ReadableStream<Uint8Array>;
    exited: Promise<number>;
  };
}
