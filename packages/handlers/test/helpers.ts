import type { Envelope, PeerAddress, Session } from "@smtpkit/core/server";

/** A minimal envelope with aiosmtpd's defaults. */
export function makeEnvelope(fields: Partial<Envelope> = {}): Envelope {
  return {
    mailFrom: null,
    mailOptions: [],
    mailParams: [],
    smtpUtf8: false,
    content: null,
    originalContent: null,
    rcptTos: [],
    rcptOptions: [],
    rcptParams: [],
    ...fields,
  } as Envelope;
}

export function makeSession(peer: PeerAddress | null): Session {
  return { peer } as Session;
}

/** A `write()` collector, aiosmtpd's `StringIO`. */
export class Collector {
  text = "";
  writes = 0;
  write(chunk: string): boolean {
    this.text += chunk;
    this.writes++;
    return true;
  }
}

export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Python's `textwrap.dedent` for the expected blocks below (strips the common indent). */
export function dedent(text: string): string {
  const lines = text.replace(/^\n/, "").split("\n");
  const indents = lines.filter((l) => l.trim() !== "").map((l) => /^ */.exec(l)?.[0].length ?? 0);
  const indent = Math.min(...indents);
  return lines.map((l) => l.slice(indent)).join("\n");
}
