/** Bytes queued in a body stream before the reader must catch up (the backpressure point). */
const HIGH_WATER_MARK = 256 * 1024;

/**
 * The message body handed to `handleDATAStream`: a web `ReadableStream` fed by the connection.
 * `write()` resolves only when the reader wants more, so a slow consumer stops the socket reads.
 * When the consumer is gone (cancelled, or its hook already returned) writes are dropped, so an
 * unread stream can never stall the session.
 */
export class BodyStream {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private resume: (() => void) | null = null;
  private finished = false;
  /** Set once the consumer cancelled the stream or stopped listening. */
  abandoned = false;
  /** Body octets that reached the stream. */
  bytes = 0;

  constructor() {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => this.wake(),
        cancel: () => this.abandon(),
      },
      { highWaterMark: HIGH_WATER_MARK, size: (chunk) => chunk.byteLength },
    );
  }

  /** Queues a chunk; returns a promise only when the reader is behind (then wait for it). */
  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.abandoned || this.finished) return;
    this.controller.enqueue(chunk);
    this.bytes += chunk.byteLength;
    if ((this.controller.desiredSize ?? 1) > 0) return;
    return new Promise<void>((resolve) => {
      this.resume = resolve;
    });
  }

  /** The consumer will not read any more: release a waiting writer and drop later writes. */
  abandon(): void {
    this.abandoned = true;
    this.wake();
  }

  close(): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.abandoned) this.controller.close();
    this.wake();
  }

  error(reason: unknown): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.abandoned) this.controller.error(reason);
    this.wake();
  }

  private wake(): void {
    const resume = this.resume;
    this.resume = null;
    resume?.();
  }
}
