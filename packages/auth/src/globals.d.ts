// The package targets plain ES2022 with no DOM or Node types; these web-standard globals exist in
// every runtime we support (Node >= 20, Deno, Bun, browsers, workers).
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array, options?: { stream?: boolean }): string;
}
declare function setTimeout(callback: (...args: never[]) => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;

/** The slice of WebCrypto this package uses. */
interface CryptoKey {
  readonly type: string;
}
interface SubtleCrypto {
  digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer>;
  importKey(
    format: "raw",
    keyData: Uint8Array,
    algorithm: string | { name: string; hash?: string },
    extractable: boolean,
    keyUsages: readonly string[],
  ): Promise<CryptoKey>;
  sign(algorithm: string, key: CryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
  deriveBits(
    algorithm: { name: "PBKDF2"; hash: string; salt: Uint8Array; iterations: number },
    baseKey: CryptoKey,
    length: number,
  ): Promise<ArrayBuffer>;
}
declare const crypto: {
  readonly subtle: SubtleCrypto;
  getRandomValues<T extends Uint8Array>(array: T): T;
};
declare class AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}
