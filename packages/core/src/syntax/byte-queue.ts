/**
 * Received bytes waiting to be parsed. Chunks are kept as given (never copied or concatenated), so
 * body bytes can leave the engine as views into them. The caller must not reuse a chunk's memory
 * after handing it over.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** Offset of the first unread byte in `chunks[0]`. */
  private offset = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.total += chunk.length;
    // A client trickling tiny chunks would make every search walk thousands of them: merge small
    // chunks (copying at most a few KiB) so the chunk count stays low.
    const last = this.chunks.length - 1;
    const tail = this.chunks[last];
    if (tail && chunk.length < SMALL_CHUNK && tail.length < MERGE_LIMIT) {
      const start = last === 0 ? this.offset : 0;
      const merged = new Uint8Array(tail.length - start + chunk.length);
      merged.set(tail.subarray(start), 0);
      merged.set(chunk, tail.length - start);
      this.chunks[last] = merged;
      if (last === 0) this.offset = 0;
      return;
    }
    this.chunks.push(chunk);
  }

  clear(): void {
    this.chunks = [];
    this.offset = 0;
    this.total = 0;
  }

  /** The unread part of the first chunk (a view), or an empty array. */
  head(): Uint8Array {
    const first = this.chunks[0];
    if (!first) return EMPTY;
    return this.offset === 0 ? first : first.subarray(this.offset);
  }

  /** Marks `count` bytes as read. */
  skip(count: number): void {
    let left = count;
    this.total -= count;
    while (left > 0) {
      const first = this.chunks[0];
      if (!first) throw new RangeError("skip past end of queue");
      const available = first.length - this.offset;
      if (left < available) {
        this.offset += left;
        return;
      }
      left -= available;
      this.chunks.shift();
      this.offset = 0;
    }
  }

  /**
   * Position of `byte` counted from the first unread byte, looking at positions `from` up to
   * `limit` (exclusive); -1 if absent.
   */
  indexOf(byte: number, limit: number, from = 0): number {
    let base = 0;
    let offset = this.offset;
    for (const chunk of this.chunks) {
      const available = chunk.length - offset;
      if (base + available > from) {
        const start = offset + Math.max(0, from - base);
        const end = Math.min(chunk.length, offset + (limit - base));
        const found = chunk.indexOf(byte, start);
        if (found !== -1 && found < end) return base + found - offset;
      }
      base += available;
      if (base >= limit) return -1;
      offset = 0;
    }
    return -1;
  }

  /**
   * The next `count` bytes, marked read: a view when they lie in one chunk (chunks are never
   * written to once queued), a copy when they span chunks.
   */
  take(count: number): Uint8Array {
    const head = this.head();
    if (head.length >= count) {
      const out = head.subarray(0, count);
      this.skip(count);
      return out;
    }
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const part = this.head();
      const n = Math.min(part.length, count - filled);
      out.set(part.subarray(0, n), filled);
      filled += n;
      this.skip(n);
    }
    return out;
  }

  /** The byte at `index` from the first unread byte, or -1. */
  byteAt(index: number): number {
    let i = index + this.offset;
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i] ?? -1;
      i -= chunk.length;
    }
    return -1;
  }
}

const EMPTY = new Uint8Array(0);
/** Chunks shorter than this are merged into the previous one… */
const SMALL_CHUNK = 512;
/** …while it is shorter than this. */
const MERGE_LIMIT = 16 * 1024;
