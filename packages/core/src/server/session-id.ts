/**
 * Session ids: short, unique and sortable by start time without coordination between processes.
 * Milliseconds since the epoch (base 36, 8 characters until 2059), a per-process random tag, and a
 * per-process counter: `miq4xb2k` + `7fq` + `00a1`.
 */
const PROCESS_TAG = randomTag(3);
let counter = 0;

export function newSessionId(now = Date.now()): string {
  counter = (counter + 1) % 1679616; // 36^4
  return now.toString(36) + PROCESS_TAG + counter.toString(36).padStart(4, "0");
}

/** Not a secret, only a tie-breaker between processes started in the same millisecond. */
function randomTag(length: number): string {
  let tag = "";
  for (let i = 0; i < length; i++) tag += Math.floor(Math.random() * 36).toString(36);
  return tag;
}
