// The core targets plain ES2022 with no DOM or Node types; these web-standard globals exist in every
// runtime we support (Node, Deno, Bun, browsers, workers).
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array, options?: { stream?: boolean }): string;
}
declare function atob(data: string): string;
declare function btoa(data: string): string;

// Web-standard globals used by the runtime-free server layer (present in Node, Deno, Bun, workers).
declare function setTimeout(callback: (...args: never[]) => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
declare const console: {
  log(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
};
declare class AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
  throwIfAborted(): void;
}
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}
interface ReadableStreamDefaultController<R> {
  readonly desiredSize: number | null;
  enqueue(chunk: R): void;
  close(): void;
  error(reason?: unknown): void;
}
interface ReadableStreamReadResult<R> {
  done: boolean;
  value: R | undefined;
}
interface ReadableStreamDefaultReader<R> {
  read(): Promise<ReadableStreamReadResult<R>>;
  releaseLock(): void;
  cancel(reason?: unknown): Promise<void>;
}
declare class ReadableStream<R = unknown> {
  constructor(
    source?: {
      start?(controller: ReadableStreamDefaultController<R>): void;
      pull?(controller: ReadableStreamDefaultController<R>): void | Promise<void>;
      cancel?(reason?: unknown): void | Promise<void>;
    },
    strategy?: { highWaterMark?: number; size?(chunk: R): number },
  );
  getReader(): ReadableStreamDefaultReader<R>;
  cancel(reason?: unknown): Promise<void>;
  readonly locked: boolean;
  [Symbol.asyncIterator](): AsyncIterableIterator<R>;
}
