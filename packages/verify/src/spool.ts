/**
 * A copy of a message kept while it is verified, to hand on to the delivery afterwards: in memory
 * up to a threshold, then in a temporary file (mode 0600, removed once replayed or dropped), so a
 * large message never sits in memory whole.
 */
import { createReadStream } from "node:fs";
import { type FileHandle, open, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Bytes kept in memory before the copy moves to a file (default of `spoolThreshold`). */
export const DEFAULT_SPOOL_THRESHOLD = 1024 * 1024;

let sequence = 0;

export class Spool {
  readonly #threshold: number;
  readonly #dir: string;
  #memory: Uint8Array[] = [];
  #size = 0;
  #file: FileHandle | null = null;
  #path: string | null = null;
  #taken = false;

  constructor(threshold = DEFAULT_SPOOL_THRESHOLD, dir = tmpdir()) {
    this.#threshold = threshold;
    this.#dir = dir;
  }

  /** Bytes kept. */
  get size(): number {
    return this.#size;
  }

  /** Whether the copy went to a file. */
  get spooled(): boolean {
    return this.#path !== null;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#size += chunk.length;
    if (this.#file === null && this.#size <= this.#threshold) {
      // A copy: a chunk may be a view into a larger read buffer, or one a runtime reuses.
      this.#memory.push(chunk.slice());
      return;
    }
    if (this.#file === null) {
      sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
      const name = `smtpkit-spool-${process.pid}-${Date.now()}-${sequence}`;
      this.#path = join(this.#dir, name);
      this.#file = await open(this.#path, "wx", 0o600);
      const held = this.#memory;
      this.#memory = [];
      for (const part of held) await writeAll(this.#file, part);
    }
    await writeAll(this.#file, chunk);
  }

  /** The copy, once (removes the file when the reading ends, however it ends). */
  async *replay(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.#taken) throw new TypeError("the spooled message was already replayed");
    this.#taken = true;
    if (this.#file === null) {
      const held = this.#memory;
      this.#memory = [];
      yield* held;
      return;
    }
    try {
      await this.#file.close();
      this.#file = null;
      for await (const chunk of createReadStream(this.#path as string, {
        highWaterMark: 256 * 1024,
      })) {
        yield chunk as Uint8Array;
      }
    } finally {
      await this.dispose();
    }
  }

  /** Drops the copy (the message was refused, or reading it failed). */
  async dispose(): Promise<void> {
    this.#memory = [];
    const file = this.#file;
    const path = this.#path;
    this.#file = null;
    this.#path = null;
    await file?.close().catch(() => undefined);
    if (path !== null) await unlink(path).catch(() => undefined);
  }
}

async function writeAll(file: FileHandle, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await file.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}
