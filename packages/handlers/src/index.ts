export { type CliHandlerClass, type TextOutput, UsageError } from "./cli.js";
export { Debugging } from "./debugging.js";
export { DotStuffer } from "./dot-stuffing.js";
export { HeaderInserter, insertHeaders } from "./header-insert.js";
export { splitByteLines, splitTextLines } from "./lines.js";
export { type Delivery, Mailbox, type MailboxOptions, uniqueName } from "./mailbox.js";
export {
  type Criteria,
  Inbox,
  type Match,
  Memory,
  type ScopeFilter,
  type StoredMessage,
  summary,
  type WaitOptions,
} from "./memory.js";
export {
  AsyncMessage,
  addressesOf,
  contentBytes,
  type EnvelopeFields,
  Message,
  type MessageOptions,
  type ParsedMessage,
  parseMessage,
  peerFields,
  peerString,
} from "./message.js";
export { PeerInserter } from "./peer-inserter.js";
export {
  type ProxyMode,
  type ProxyOptions,
  SmtpProxy,
  /** aiosmtpd's name for `SmtpProxy` (the class is not called `Proxy` to leave the global alone). */
  SmtpProxy as Proxy,
  upstreamReply,
} from "./proxy.js";
export { upstreamAnswer } from "./proxy-transparent.js";
export { pyListRepr, pyPeerRepr, pyStrRepr } from "./python-repr.js";
export {
  received,
  receivedValue,
  returnPathValue,
  rfc5322Date,
  traceFields,
} from "./received.js";
export { Sink } from "./sink.js";
export {
  type UpstreamAuth,
  UpstreamClient,
  type UpstreamClientOptions,
  UpstreamError,
} from "./upstream-client.js";
export { ReplyReader, type ReplyReaderLimits, UpstreamProtocolError } from "./upstream-reply.js";
