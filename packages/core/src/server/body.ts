import { concatBytes } from "../syntax/bytes.js";

/** Bytes queued in a body before the writer must wait for the reader (the backpressure point). */
const HIGH_WATER_MARK = 256 * 1024;
const DONE = Object.freeze({ done: true, value: undefined }) as BodyReadResult;

/** What `getReader().read()` resolves with, the web streams' shape. */
export type BodyReadResult =
  | { readonly done: false; readonly value: Uint8Array }
  | { readonly done: true; readonly value: undefined };

/** A reader over a `MessageBody`, shaped like `ReadableStreamDefaultReader`. */
export interface BodyReader {
  read(): Promise<BodyReadResult>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
  readonly closed: Promise<void>;
}

/**
 * The message body handed to `handleDATAStream`, fed by the connection as it arrives (already
 * dot-unstuffed, size limits already applied). Read it with `for await (const chunk of body)`,
 * `body.getReader()`, `await body.bytes()`, or ask for a web `ReadableStream` with `body.stream()`.
 *
 * Building a web stream costs more than the rest of a small message's handling, so one is made
 * only on request. The writer waits while more than 256 KiB are unread, which stops the socket
 * reads: a slow consumer slows the client down, never the memory up. A consumer that cancels (or
 * whose hook returns) makes later chunks be dropped, so an unread body never stalls the session.
 */
export class MessageBody implements AsyncIterable<Uint8Array> {
  readonly #queue: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  #received = 0;
  #ended = false;
  #error: unknown = null;
  #cancelled = false;
  #reading: ((result: BodyReadResult) => void) | null = null;
  #failReading: ((error: unknown) => void) | null = null;
  #resumeWriter: (() => void) | null = null;
  #locked = false;

  /** Body octets received so far (after unstuffing). */
  get size(): number {
    return this.#received;
  }

  /** True once `getReader()`, iteration or `stream()` took the body. */
  get locked(): boolean {
    return this.#locked;
  }

  // ---------------------------------------------------------------------------------------------
  // Reading.

  /** The next chunk; `{ done: true }` at the end; rejects when the body failed (limit, disconnect). */
  read(): Promise<BodyReadResult> {
    if (this.#reading) return Promise.reject(new TypeError("a read() is already pending"));
    const chunk = this.#shift();
    if (chunk) return Promise.resolve({ done: false, value: chunk });
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#ended || this.#cancelled) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.#reading = resolve;
      this.#failReading = reject;
    });
  }

  /** Drops the rest of the body; later chunks are discarded. */
  cancel(_reason?: unknown): Promise<void> {
    this.#cancelled = true;
    this.#queue.length = 0;
    this.#head = 0;
    this.#queued = 0;
    this.#settleRead(DONE);
    this.#wakeWriter();
    return Promise.resolve();
  }

  getReader(): BodyReader {
    this.#lock();
    let closed: Promise<void> | null = null;
    return {
      read: () => this.read(),
      cancel: (reason) => this.cancel(reason),
      releaseLock: () => {
        this.#locked = false;
      },
      get closed() {
        closed ??= Promise.resolve();
        return closed;
      },
    };
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    this.#lock();
    try {
      for (;;) {
        const result = await this.read();
        if (result.done) return;
        yield result.value;
      }
    } finally {
      // A `break` out of the loop: the consumer is done with the body.
      if (!this.#ended && this.#error === null) void this.cancel();
    }
  }

  /** The body as a web `ReadableStream` (made on request: it is the costly form). */
  stream(): ReadableStream<Uint8Array> {
    this.#lock();
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const result = await this.read();
          if (result.done) controller.close();
          else controller.enqueue(result.value);
        } catch (error) {
          controller.error(error);
        }
      },
      cancel: (reason) => this.cancel(reason),
    });
  }

  /** The whole body in one array (holds the message in memory). */
  async bytes(): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of this) chunks.push(chunk);
    return concatBytes(chunks);
  }

  /** The whole body decoded as UTF-8. */
  async text(): Promise<string> {
    return new TextDecoder().decode(await this.bytes());
  }

  // ---------------------------------------------------------------------------------------------
  // Writing (the server's side).

  /** Queues a chunk; returns a promise only when the reader is behind (then wait for it). */
  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#ended || this.#cancelled || this.#error !== null) return;
    this.#received += chunk.byteLength;
    if (this.#reading) {
      this.#settleRead({ done: false, value: chunk });
      return;
    }
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
    if (this.#queued < HIGH_WATER_MARK) return;
    return new Promise<void>((resolve) => {
      this.#resumeWriter = resolve;
    });
  }

  /** The body is complete. */
  end(): void {
    if (this.#ended || this.#error !== null) return;
    this.#ended = true;
    if (this.#queued === 0) this.#settleRead(DONE);
    this.#wakeWriter();
  }

  /** The body will not complete (a limit was crossed, the transaction or connection ended). */
  fail(error: unknown): void {
    if (this.#ended || this.#error !== null) return;
    this.#error = error;
    this.#queue.length = 0;
    this.#head = 0;
    this.#queued = 0;
    const fail = this.#failReading;
    this.#reading = null;
    this.#failReading = null;
    fail?.(error);
    this.#wakeWriter();
  }

  /** The consumer will read no more (its hook returned): drop later writes, free the writer. */
  abandon(): void {
    if (!this.#ended && this.#error === null) void this.cancel();
  }

  // ---------------------------------------------------------------------------------------------

  #lock(): void {
    if (this.#locked) throw new TypeError("the body is already being read");
    this.#locked = true;
  }

  #shift(): Uint8Array | undefined {
    if (this.#head === this.#queue.length) return undefined;
    const chunk = this.#queue[this.#head] as Uint8Array;
    this.#queue[this.#head] = EMPTY;
    this.#head++;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
    this.#queued -= chunk.byteLength;
    if (this.#queued < HIGH_WATER_MARK) this.#wakeWriter();
    return chunk;
  }

  #settleRead(result: BodyReadResult): void {
    const resolve = this.#reading;
    if (!resolve) return;
    this.#reading = null;
    this.#failReading = null;
    resolve(result);
  }

  #wakeWriter(): void {
    const resume = this.#resumeWriter;
    this.#resumeWriter = null;
    resume?.();
  }
}

const EMPTY = new Uint8Array(0);
