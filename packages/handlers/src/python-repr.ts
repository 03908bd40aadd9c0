/**
 * Python's `repr()` for the few value shapes aiosmtpd prints (`str`, lists of `str`, peer
 * tuples), so that smtpkit's output matches aiosmtpd's byte for byte.
 */
import type { PeerAddress } from "@smtpkit/core/server";

/** Characters `str.isprintable()` rejects: categories C* and Z* except the ASCII space. */
const NON_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

function hex(codePoint: number, width: number): string {
  return codePoint.toString(16).padStart(width, "0");
}

/** `repr(s)` for a Python `str` (CPython's `unicode_repr`). */
export function pyStrRepr(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of value) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x7f || (ch !== " " && !NON_PRINTABLE.test(ch))) out += ch;
    else if (cp <= 0xff) out += `\\x${hex(cp, 2)}`;
    else if (cp <= 0xffff) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return out + quote;
}

/** `repr(list_of_str)`: `['SIZE=102', 'BODY=8BITMIME']`. */
export function pyListRepr(values: readonly string[]): string {
  return `[${values.map(pyStrRepr).join(", ")}]`;
}

/**
 * `repr(session.peer)` as aiosmtpd prints it: asyncio's `peername`, i.e. `('127.0.0.1', 54321)`
 * for IPv4, `('::1', 54321, 0, 0)` (host, port, flowinfo, scope_id) for IPv6, the socket path
 * string for a UNIX socket (`''` for an unnamed client), and `None` when unknown.
 */
export function pyPeerRepr(peer: PeerAddress | null | undefined): string {
  if (!peer) return "None";
  if (peer.family === "unix") return pyStrRepr(peer.address ?? "");
  if (peer.family === "IPv6") {
    const zone = peer.address.includes("%")
      ? peer.address.slice(peer.address.indexOf("%") + 1)
      : "";
    const scopeId = /^\d+$/.test(zone) ? Number(zone) : 0;
    return `(${pyStrRepr(peer.address)}, ${peer.port}, 0, ${scopeId})`;
  }
  return `(${pyStrRepr(peer.address)}, ${peer.port})`;
}
