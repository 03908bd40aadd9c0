// The Bun globals @smtpkit/bun uses, declared so `tsc` can check the package under Node (bun-types
// is not installed here). Bun does not type-check; nothing imports this file.

declare namespace Bun {
  interface TLSOptions {
    key?: string | string[];
    cert?: string | string[];
    ca?: string | string[];
    passphrase?: string;
    requestCert?: boolean;
    rejectUnauthorized?: boolean;
    ALPNProtocols?: string | string[];
    /** 0x0303 TLS 1.2, 0x0304 TLS 1.3. */
    minVersion?: number;
    ciphers?: string;
  }
  interface Socket<Data = unknown> {
    data: Data;
    readonly remoteAddress: string;
    readonly remotePort?: number;
    readonly remoteFamily?: string;
    readonly localAddress?: string;
    readonly localPort: number;
    readonly localFamily?: string;
    readonly authorized: boolean;
    readonly alpnProtocol: string | false | null;
    write(data: Uint8Array): number;
    end(): void;
    terminate(): void;
    pause(): void;
    resume(): void;
    getTLSVersion(): string | null;
    getCipher(): { name: string } | null;
    getServername(): string | undefined;
    getPeerCertificate(): unknown;
    exportKeyingMaterial(length: number, label: string, context?: Uint8Array): Uint8Array;
    upgradeTLS<Next>(options: {
      isServer: boolean;
      data: Next;
      tls: TLSOptions;
      socket: SocketHandler<Next>;
    }): [Socket<Data>, Socket<Next>];
  }
  interface SocketHandler<Data = unknown> {
    open?(socket: Socket<Data>): void;
    data?(socket: Socket<Data>, chunk: Uint8Array): void;
    drain?(socket: Socket<Data>): void;
    handshake?(socket: Socket<Data>, success: boolean, authorizationError: Error | null): void;
    end?(socket: Socket<Data>): void;
    close?(socket: Socket<Data>, error?: Error): void;
    error?(socket: Socket<Data>, error: Error): void;
  }
  interface SocketListener {
    readonly hostname: string;
    readonly port: number;
    stop(closeActiveConnections?: boolean): void;
  }
  function listen<Data>(
    options: {
      socket: SocketHandler<Data>;
      allowHalfOpen?: boolean;
      tls?: TLSOptions;
    } & ({ hostname: string; port: number } | { unix: string }),
  ): SocketListener;
  function connect<Data>(options: {
    hostname: string;
    port: number;
    data: Data;
    socket: SocketHandler<Data>;
  }): Promise<Socket<Data>>;
}

declare module "bun:test" {
  export function test(name: string, fn: () => Promise<void> | void, timeout?: number): void;
  interface Matchers {
    toThrow(pattern?: RegExp): void;
    toBe(expected: unknown): void;
    readonly rejects: { toThrow(pattern?: RegExp): Promise<void> };
  }
  export function expect(value: unknown): Matchers;
}
