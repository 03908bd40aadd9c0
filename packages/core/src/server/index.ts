export { type BodyReader, type BodyReadResult, MessageBody } from "./body.js";
export { syntax } from "./command-syntax.js";
export { compose } from "./compose.js";
export type {
  AuthVerdict,
  Awaitable,
  BodyFilterResult,
  CloseReason,
  ConnectDecision,
  Handler,
  HookResult,
} from "./handler.js";
export { type ListenTlsOptions, type RawListener, SmtpListener } from "./listener.js";
export { NO_STATUS } from "./lmtp-status.js";
export {
  type AuthMechanism,
  authMechanism,
  Credentials,
  LOGIN,
  PLAIN,
  runSasl,
  saslContext,
  verifyCredentials,
} from "./mechanisms.js";
export { Envelope, Session, transmissionType } from "./session.js";
export { newSessionId } from "./session-id.js";
export {
  type ListenOptions,
  SessionPool,
  type SessionPoolOptions,
  type SmtpClass,
  tooManyConnectionsReply,
} from "./session-pool.js";
export { SMTP } from "./smtp.js";
export type {
  Authenticator,
  AuthResult,
  CommandDefinition,
  LoginPassword,
  ServerContext,
  SmtpLogger,
  SmtpOptions,
} from "./smtp-options.js";
export {
  peerAddress,
  type RawSocket,
  type RawSocketEvents,
  SocketTransport,
  type SocketTransportOptions,
} from "./socket-transport.js";
export type { ConnectionHandler, PeerAddress, SmtpTransport, TlsInfo } from "./transport.js";
