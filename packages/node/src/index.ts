// The core's server types, re-exported so an application needs a single import.
export {
  type BodyFilterResult,
  compose,
  Envelope,
  type Handler,
  type PeerAddress,
  Session,
  SMTP,
  type SmtpOptions,
  type SmtpTransport,
  SocketTransport,
  type TlsInfo,
  tooManyConnectionsReply,
} from "@smtpkit/core/server";
export {
  createServer,
  type HandleSocketOptions,
  handleSocket,
  type ServeOptions,
  type SmtpClass,
  SmtpServer,
  serve,
  type TlsServerOptions,
} from "./listen.js";
export {
  NodeSocket,
  NodeTransport,
  type NodeTransportOptions,
  nodeSocket,
  type StartTlsOptions,
} from "./socket.js";
