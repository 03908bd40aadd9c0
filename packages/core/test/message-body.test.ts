import { fc, test as fcTest } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import { MessageBody } from "../src/server/body.js";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

describe("MessageBody", () => {
  test("for await reads every chunk in order, then ends", async () => {
    const body = new MessageBody();
    const read = (async () => {
      const seen: string[] = [];
      for await (const chunk of body) seen.push(text(chunk));
      return seen;
    })();
    body.write(bytes("a"));
    body.write(bytes("b"));
    await Promise.resolve();
    body.write(bytes("c"));
    body.end();
    expect(await read).toEqual(["a", "b", "c"]);
    expect(body.size).toBe(3);
  });

  test("getReader() has the web streams' read() shape", async () => {
    const body = new MessageBody();
    const reader = body.getReader();
    body.write(bytes("hello"));
    body.end();
    const first = await reader.read();
    expect(first.done).toBe(false);
    expect(text(first.value as Uint8Array)).toBe("hello");
    expect(await reader.read()).toEqual({ done: true, value: undefined });
  });

  test("stream() gives a web ReadableStream on request", async () => {
    const body = new MessageBody();
    const stream = body.stream();
    expect(stream).toBeInstanceOf(ReadableStream);
    body.write(bytes("one "));
    body.write(bytes("two"));
    body.end();
    const reader = stream.getReader();
    let all = "";
    for (let r = await reader.read(); !r.done; r = await reader.read())
      all += text(r.value as Uint8Array);
    expect(all).toBe("one two");
  });

  test("bytes() and text() collect the whole body", async () => {
    const body = new MessageBody();
    const all = body.text();
    body.write(bytes("x".repeat(10)));
    body.write(bytes("y"));
    body.end();
    expect(await all).toBe(`${"x".repeat(10)}y`);
  });

  test("a failed body rejects the pending and later reads", async () => {
    const body = new MessageBody();
    const reader = body.getReader();
    const pending = reader.read();
    body.fail(new Error("too much data"));
    await expect(pending).rejects.toThrow("too much data");
    await expect(reader.read()).rejects.toThrow("too much data");
    // Writes after the failure are dropped without waiting.
    expect(body.write(bytes("late"))).toBeUndefined();
  });

  test("the writer waits while 256 KiB are unread, and goes on once the reader catches up", async () => {
    const body = new MessageBody();
    const chunk = new Uint8Array(64 * 1024);
    const waits = [1, 2, 3, 4].map(() => body.write(chunk));
    expect(waits.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(waits[3]).toBeInstanceOf(Promise);
    let resumed = false;
    void waits[3]?.then(() => {
      resumed = true;
    });
    await Promise.resolve();
    expect(resumed).toBe(false);
    await body.read();
    await Promise.resolve();
    expect(resumed).toBe(true);
  });

  test("a consumer that cancels (or stops iterating) frees the writer and drops the rest", async () => {
    const body = new MessageBody();
    const chunk = new Uint8Array(300 * 1024);
    const waiting = body.write(chunk);
    expect(waiting).toBeInstanceOf(Promise);
    for await (const _ of body) break;
    await waiting;
    expect(body.write(chunk)).toBeUndefined();
  });

  test("only one reader at a time", () => {
    const body = new MessageBody();
    body.getReader();
    expect(() => body.stream()).toThrow(TypeError);
  });

  fcTest.prop([
    fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 40 }),
    fc.array(fc.boolean(), { maxLength: 80 }),
  ])(
    "any interleaving of writes and reads yields the bytes written, in order",
    async (chunks, yields) => {
      const body = new MessageBody();
      const collected = body.bytes();
      let turn = 0;
      for (const chunk of chunks) {
        const wait = body.write(chunk);
        if (wait) await wait;
        if (yields[turn++ % Math.max(1, yields.length)]) await Promise.resolve();
      }
      body.end();
      const expected = chunks.flatMap((chunk) => [...chunk]);
      expect([...(await collected)]).toEqual(expected);
      expect(body.size).toBe(expected.length);
    },
  );
});
