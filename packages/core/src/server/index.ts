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
export {
  type AuthObservation,
  type CloseObservation,
  type CommandObservation,
  combineObservers,
  type DataObservation,
  type ErrorObservation,
  type LimitName,
  type LimitObservation,
  type MailObservation,
  OBSERVER_EVENTS,
  type RcptObservation,
  type RejectObservation,
  type ReplyObservation,
  type SessionObservation,
  type SmtpObserver,
  type TlsObservation,
  type TransactionObservation,
  type TranscriptObservation,
} from "./observer.js";
export { messagePeer, type RelayTrust } from "./relay-chain.js";
export { Envelope, type ForwardedClient, Session, transmissionType } from "./session.js";
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
export {
  CertificateMap,
  CurrentCertificates,
  DEFAULT_MIN_TLS_VERSION,
  normalizeServername,
  type SniOptions,
  TLS_VERSION_NUMBERS,
  type TlsVersion,
} from "./tls-config.js";
export type { ConnectionHandler, PeerAddress, SmtpTransport, TlsInfo } from "./transport.js";
