export { type Phase, ServerConnection } from "./engine/connection.js";
export { SMTP_ERRORS } from "./engine/replies.js";
export {
  COMMAND_RULES,
  commandTable,
  stateDiagram,
  TRANSITIONS,
} from "./engine/states.js";
export { LocalProtocolError, RemoteProtocolError, SmtpError } from "./errors.js";
export * from "./events.js";
export {
  type AuthOptions,
  type CommandSpec,
  type ConnectionOptions,
  DEFAULT_DATA_SIZE_LIMIT,
  type Extensions,
  type ResolvedOptions,
  resolveOptions,
} from "./options.js";
export {
  formatReply,
  parseReply,
  printable,
  type Reply,
  type ReplyLike,
  reply,
  toReply,
} from "./reply.js";
export type { SaslContext, SaslExchange, SaslMechanism, SaslStep, SaslVerdict } from "./sasl.js";
export { parsePath, parseVrfyArgument, stripKeyword } from "./syntax/address.js";
export { decodeBase64, encodeBase64 } from "./syntax/base64.js";
export { concatBytes } from "./syntax/bytes.js";
export { type CidrMatcher, parseCidrList } from "./syntax/cidr.js";
export type { DataError, LineEndingPolicy } from "./syntax/data-reader.js";
export { decodeXtext, type EsmtpParam, parseEsmtpParams } from "./syntax/esmtp-params.js";
export {
  type ProxyData,
  type ProxyParseResult,
  type ProxyTlv,
  parseProxyHeader,
} from "./syntax/proxy-protocol.js";
