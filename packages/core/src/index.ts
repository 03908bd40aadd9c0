export { parsePath, parseVrfyArgument, stripKeyword } from "./address.js";
export { decodeBase64, encodeBase64 } from "./base64.js";
export { type CidrMatcher, parseCidrList } from "./cidr.js";
export type { DataError, LineEndingPolicy } from "./data-reader.js";
export { LocalProtocolError, RemoteProtocolError, SmtpError } from "./errors.js";
export { decodeXtext, type EsmtpParam, parseEsmtpParams } from "./esmtp-params.js";
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
  type ProxyData,
  type ProxyParseResult,
  type ProxyTlv,
  parseProxyHeader,
} from "./proxy-protocol.js";
export { formatReply, parseReply, type Reply, type ReplyLike, reply, toReply } from "./reply.js";
export type { SaslContext, SaslExchange, SaslMechanism, SaslStep, SaslVerdict } from "./sasl.js";
export { type Phase, ServerConnection } from "./server-connection.js";
