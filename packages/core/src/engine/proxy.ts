/** The "proxy" phase: one PROXY protocol v1/v2 header before the greeting. */
import { parseProxyHeader } from "../syntax/proxy-protocol.js";
import { type Dialog, PENDING } from "./dialog.js";

/** Reads the header; false when more input is needed. An invalid header closes the session. */
export function readProxyHeader(d: Dialog): boolean {
  const input = d.input;
  // A v2 header announces its length: wait for all of it before copying anything.
  if (input.length >= 16 && input.byteAt(0) === 13 && input.byteAt(12) !== -1) {
    const total = 16 + input.byteAt(14) * 256 + input.byteAt(15);
    if (input.length < total && input.byteAt(4) === 0) return false;
  }
  const head = input.take(input.length);
  const result = parseProxyHeader(head);
  if (result.status === "incomplete") {
    input.push(head);
    return false;
  }
  if (result.consumed < head.length) input.push(head.subarray(result.consumed));
  if (!result.data.valid) {
    d.finish("proxyRejected");
    return true;
  }
  d.await(PENDING.proxyHeader, { type: "proxyHeader", proxy: result.data }, "proxyHeader");
  return true;
}
